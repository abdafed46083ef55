// Subscribes to messageAdded with the reference graphql-transport-ws client and
// prints each line of progress as JSON: {"event":"connected"}, then the first result.
// Usage: node tests/js/subscribe.mjs ws://HOST:PORT/graphql TOKEN [QUERY]
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, query] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const timer = setTimeout(() => {
  print({ event: 'timeout' });
  process.exit(2);
}, 15000);

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: false,
  on: { connected: () => print({ event: 'connected' }) },
});

try {
  const results = client.iterate({
    query: query ?? 'subscription { messageAdded { kind title grant { id } } }',
  });
  for await (const result of results) {
    print({ event: 'next', result });
    break;
  }
} catch (error) {
  print({ event: 'error', error: String(error?.reason ?? error?.message ?? error) });
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await client.dispose();
}
