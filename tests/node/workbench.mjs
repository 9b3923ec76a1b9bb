// The analyst's workbench in a real browser (headless Chromium through playwright-core): sign in
// through the panel, run the Compare example, open the Chart view, copy the CSV. Prints one JSON
// object with what it saw, for the Rust test (tests/api/workbench.rs) to check.
// Usage: node workbench.mjs <server url> <email> <password> <organization id> <screenshot directory>
import { chromium } from 'playwright-core';

const [base, email, password, organizationId, shots] = process.argv.slice(2);
const executablePath = process.env.FV_CHROMIUM || '/usr/bin/chromium';

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const out = { consoleErrors: [], foreignRequests: [] };
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
const page = await context.newPage();
try {
  page.on('console', (m) => m.type() === 'error' && out.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => out.consoleErrors.push(String(e)));
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith(base.replace('http', 'ws'))) {
      out.foreignRequests.push(r.url());
    }
  });

  await page.goto(`${base}/graphql`);
  const form = page.locator('form.fv-panel');
  await form.waitFor();
  out.before = await page.locator('.fv-signed-in').textContent();
  out.tabs = await page.locator('.graphiql-tab').allTextContents();

  // A wrong password first: the panel shows the API's message and stays signed out.
  await form.locator('input[type=email]').fill(email);
  await form.locator('input[type=password]').fill('not the password');
  await form.locator('button[type=submit]').click();
  out.wrongPassword = await page.locator('.fv-error').textContent();

  await form.locator('input[type=password]').fill(password);
  await form.locator('button[type=submit]').click();
  await page.locator('.fv-signed-in', { hasText: 'Signed in as' }).waitFor();
  out.signedInAs = await page.locator('.fv-signed-in').textContent();
  out.remembered = await page.evaluate(() => localStorage.getItem('finvision:session'));
  // After signing in, the Explorer is open.
  await page.locator('.graphiql-explorer-root').waitFor();
  await page.screenshot({ path: `${shots}/workbench-explorer.png` });

  // GraphiQL reads the operation's name from the editor a moment after it changes: a run before
  // that would ask for the previous tab's operation.
  const operationIs = (name) =>
    page.waitForFunction(
      (n) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.operationName === n,
      name,
    );
  await page.locator('.graphiql-tab-button', { hasText: 'Compare' }).click();
  await operationIs('Compare');
  const editorValue = (selector) =>
    page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), selector);
  out.variables = JSON.parse(await editorValue('.graphiql-editor-tool [data-testid] .CodeMirror, .graphiql-editor-tool .CodeMirror'));
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() => {
    const result = document.querySelector('.result-window .CodeMirror');
    return result && result.CodeMirror.getValue().includes('"compare"');
  });
  out.response = JSON.parse(await editorValue('.result-window .CodeMirror'));

  await page.locator('button[aria-label="Show Chart"]').click();
  await page.locator('.fv-chart canvas').first().waitFor();
  out.charts = await page.evaluate(() =>
    [...document.querySelectorAll('.fv-chart')].map((chart) => {
      const canvas = chart.querySelector('canvas');
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted += 1;
      return {
        unit: chart.getAttribute('data-unit'),
        title: chart.querySelector('.u-title')?.textContent,
        axisLabels: chart.uplot.axes.filter((a) => a.label).map((a) => a.label),
        ticks: chart.uplot.axes[1]._values ?? [],
        // uPlot's legend has one row per series it plots, the x series first.
        series: [...chart.querySelectorAll('.u-legend .u-series')].slice(1).map((s) => s.querySelector('.u-label').textContent),
        painted,
      };
    }),
  );
  await page.locator('button.fv-copy').click();
  await page.locator('.fv-note[role=status]', { hasText: 'Copied' }).waitFor();
  out.csv = await page.evaluate(() => navigator.clipboard.readText());
  // Widen the plugin pane, as an analyst would to read the chart: the charts follow.
  const bar = await page.locator('.graphiql-horizontal-drag-bar').first().boundingBox();
  await page.mouse.move(bar.x + bar.width / 2, bar.y + bar.height / 2);
  await page.mouse.down();
  await page.mouse.move(bar.x + 420, bar.y + bar.height / 2, { steps: 8 });
  await page.mouse.up();
  await page.waitForTimeout(300);
  out.widened = await page.evaluate(() => [...document.querySelectorAll('.fv-chart')].map((c) => c.uplot.width));
  await page.screenshot({ path: `${shots}/workbench-chart.png` });

  // The Assumptions example: series (no comparison), with a null (the first month's growth).
  await page.locator('.graphiql-tab-button', { hasText: 'Assumptions' }).click();
  await operationIs('Assumptions');
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() =>
    document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('"series"'),
  );
  out.seriesResponse = JSON.parse(await editorValue('.result-window .CodeMirror'));
  await page.waitForFunction(() => document.querySelector('.fv-chart')?.uplot?.series.length === 3);
  out.seriesCharts = await page.evaluate(() =>
    [...document.querySelectorAll('.fv-chart')].map((chart) => ({
      unit: chart.getAttribute('data-unit'),
      series: chart.uplot.series.slice(1).map((s) => s.label),
      nulls: chart.uplot.data.slice(1).map((values) => values.filter((v) => v === null).length),
    })),
  );

  // A subscription goes over the WebSocket with the panel's token in connection_init: an
  // ANALYST is known there, and refused the audit stream (ADMIN+) as FORBIDDEN, not as anonymous.
  await page.locator('.graphiql-tab-add').click();
  await page.waitForTimeout(300);
  await page.evaluate((org) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(
      `subscription Stream { auditEvents(organizationId: "${org}") { sequence } }`,
    );
  }, organizationId);
  await operationIs('Stream');
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() =>
    document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('"errors"'),
  );
  out.subscriptionResponse = JSON.parse(await editorValue('.result-window .CodeMirror'));

  // Sign out, then in again with "remember": a reload keeps the session (and the filled tabs).
  await page.locator('button[aria-label="Show Sign in"]').click();
  await page.locator('.fv-panel button', { hasText: 'Sign out' }).click();
  await page.locator('.fv-signed-in', { hasText: 'Not signed in' }).waitFor();
  await form.locator('input[type=email]').fill(email);
  await form.locator('input[type=password]').fill(password);
  await form.locator('input[type=checkbox]').check();
  await form.locator('button[type=submit]').click();
  await page.locator('.fv-signed-in', { hasText: 'Signed in as' }).waitFor();
  await page.reload();
  await page.locator('.fv-signed-in', { hasText: 'Signed in as' }).waitFor();
  const remembered = JSON.parse(await page.evaluate(() => localStorage.getItem('finvision:session')));
  out.rememberedAfterReload = remembered && remembered.remember;
  // Signing out revokes the token on the server.
  await page.locator('button[aria-label="Show Sign in"]').click();
  await page.locator('.fv-panel button', { hasText: 'Sign out' }).click();
  await page.locator('.fv-signed-in', { hasText: 'Not signed in' }).waitFor();
  await page.waitForTimeout(300);
  out.signedOutToken = remembered && remembered.token;
  out.rememberedAfterSignOut = await page.evaluate(() => localStorage.getItem('finvision:session'));
} catch (error) {
  // What the page looked like when it went wrong, for whoever reads the failure.
  out.error = String(error);
  await page.screenshot({ path: `${shots}/workbench-failure.png` }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
