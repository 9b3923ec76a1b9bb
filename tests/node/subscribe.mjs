// A real third-party client: the `graphql-ws` npm package subscribes to the audit stream and
// prints each event as one JSON line, so the Rust tests can check what a JavaScript integration
// receives. Usage: node subscribe.mjs <ws url> <token> <organization id> <after|-> <count>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, organizationId, after, count] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
});

const query = `subscription($org: ID!, $after: String) {
  auditEvents(organizationId: $org, after: $after) { sequence action entityType }
}`;
let received = 0;
const timer = setTimeout(() => {
  console.error(`timeout after ${received} events`);
  process.exit(2);
}, 30000);

console.log(JSON.stringify({ ready: true }));
client.subscribe(
  { query, variables: { org: organizationId, after: after === '-' ? null : after } },
  {
    next: (result) => {
      if (result.errors) {
        console.log(JSON.stringify({ errors: result.errors }));
        process.exit(3);
      }
      console.log(JSON.stringify(result.data.auditEvents));
      received += 1;
      if (received >= Number(count)) {
        clearTimeout(timer);
        client.dispose();
        process.exit(0);
      }
    },
    error: (error) => {
      console.log(JSON.stringify({ error: String(error && (error.reason || error.message || error)) }));
      process.exit(4);
    },
    complete: () => {},
  },
);
