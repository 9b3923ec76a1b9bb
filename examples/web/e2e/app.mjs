// Drives the built app (vite preview, proxying to FV_API) in headless Chromium, the way a user
// would, and prints one JSON object with what it saw. Run by tests/api/workbench.rs; by hand:
//   FV_API=http://127.0.0.1:8080 node e2e/app.mjs <email> <password> <someone else's token> <screenshot dir>
import { preview } from 'vite';
import { chromium } from 'playwright-core';

const [email, password, otherToken, shots] = process.argv.slice(2);
const api = process.env.FV_API ?? 'http://127.0.0.1:8080';

// "Someone else": the same API, another user's token.
async function asSomeoneElse(query, variables) {
  const response = await fetch(`${api}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${otherToken}` },
    body: JSON.stringify({ query, variables }),
  });
  const result = await response.json();
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data;
}
const renameBehindTheirBack = async (id, name) => {
  const { scenario } = await asSomeoneElse('query($id: ID!) { scenario(id: $id) { version } }', { id });
  await asSomeoneElse(
    'mutation($id: ID!, $v: Int!, $n: String!) { updateScenario(input: {id: $id, version: $v, name: $n}) { version } }',
    { id, v: scenario.version, n: name },
  );
};

const server = await preview({ preview: { port: 0, host: '127.0.0.1' }, logLevel: 'error' });
const url = server.resolvedUrls.local[0];
const browser = await chromium.launch({
  executablePath: process.env.FV_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const out = { consoleErrors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('pageerror', (e) => out.consoleErrors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && out.consoleErrors.push(m.text()));
  page.on('request', (r) => {
    const authorization = r.headers().authorization;
    if (authorization) out.token = authorization.replace('Bearer ', '');
  });
  await page.goto(url);
  await page.fill('input[type=email]', email);
  await page.fill('input[type=password]', password);
  await page.click('button[type=submit]');
  out.signedInAs = await page.locator('.who').textContent();

  // Relay pagination: a first page, then the next after its endCursor.
  await page.locator('button.more').waitFor();
  out.firstPage = await page.locator('button.model').allTextContents();
  await page.click('button.more');
  await page.waitForFunction((n) => document.querySelectorAll('button.model').length > n, out.firstPage.length);
  out.allModels = await page.locator('button.model').allTextContents();
  out.moreAfterLastPage = await page.locator('button.more').count();

  // A comparison: Base against Downside, revenue.
  await page.locator('button.model', { hasText: 'SaaS' }).click();
  await page.locator('select[name=base]').waitFor();
  await page.selectOption('select[name=other]', { label: 'Downside' });
  await page.selectOption('select[name=metric]', 'revenue');
  await page.locator('figure.chart').waitFor();
  out.chart = await page.evaluate(() => ({
    caption: document.querySelector('figure.chart figcaption').textContent,
    base: document.querySelector('path.base').getAttribute('d').split('L').length,
    other: document.querySelector('path.other').getAttribute('d').split('L').length,
    deltaBars: document.querySelectorAll('rect.delta').length,
  }));

  // Optimistic concurrency: someone else renames Downside after we loaded it.
  const downside = await page.locator('select[name=other]').inputValue();
  await page.locator('.audit .status', { hasText: 'live' }).waitFor();
  await renameBehindTheirBack(downside, 'Downside (theirs)');
  await page.fill('input[name=scenario-name]', 'Downside (mine)');
  await page.click('.rename button[type=submit]');
  out.conflict = await page.locator('.conflict').textContent();
  await page.click('.conflict button');
  await page.waitForFunction(() => document.querySelector('input[name=scenario-name]').value === 'Downside (theirs)');
  await page.fill('input[name=scenario-name]', 'Downside (mine)');
  await page.click('.rename button[type=submit]');
  await page.locator('select[name=other] option', { hasText: 'Downside (mine)' }).waitFor({ state: 'attached' });
  out.conflictAfterSave = await page.locator('.conflict').count();

  // The audit stream: both renames arrive live; then a change while paused arrives on resume.
  await page.locator('.audit li', { hasText: 'scenario.update' }).nth(1).waitFor();
  await page.click('.audit h2 button');
  await page.locator('.audit .status', { hasText: 'paused' }).waitFor();
  await renameBehindTheirBack(downside, 'Downside (while paused)');
  await page.waitForTimeout(300);
  out.whilePaused = await page.locator('.audit li', { hasText: 'scenario.update' }).count();
  await page.click('.audit h2 button');
  await page.locator('.audit li', { hasText: 'scenario.update' }).nth(2).waitFor();
  await page.waitForTimeout(300);
  out.audit = await page.locator('.audit li').evaluateAll((items) =>
    items.map((li) => ({ sequence: li.dataset.sequence, text: li.textContent })),
  );
  await page.screenshot({ path: `${shots}/web-example.png` });

  // Signing out revokes the token (the test checks it no longer works).
  await page.click('header button');
  await page.locator('form.sign-in').waitFor();
  out.signedOut = true;
} finally {
  await browser.close();
  await server.close();
}
console.log(JSON.stringify(out));
