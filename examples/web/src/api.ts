import { Client, cacheExchange, fetchExchange, type CombinedError } from 'urql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';

/** A signed-in session: the token in memory only, and the two clients that carry it. */
export type Session = { token: string; client: Client; ws: WsClient; dispose: () => void };

/** Sign-in itself runs without a token. */
export const anonymous = new Client({ url: '/graphql', exchanges: [cacheExchange, fetchExchange] });

export function openSession(token: string): Session {
  const client = new Client({
    url: '/graphql',
    exchanges: [cacheExchange, fetchExchange],
    fetchOptions: { headers: { authorization: `Bearer ${token}` } },
  });
  const ws = createWsClient({
    url: new URL('/graphql/ws', location.href).href.replace(/^http/, 'ws'),
    // WebSockets carry no headers: the token goes in the connection_init payload.
    connectionParams: { authorization: `Bearer ${token}` },
    // A retry would re-send the subscription's first variables (a stale `after`); the audit
    // stream resubscribes itself from the last sequence it processed instead.
    retryAttempts: 0,
  });
  return { token, client, ws, dispose: () => void ws.dispose() };
}

/** The API's error code and message, e.g. "CONFLICT: …". */
export function errorMessage(error: CombinedError): string {
  const first = error.graphQLErrors[0];
  return first ? `${first.extensions?.code ?? 'ERROR'}: ${first.message}` : error.message;
}

export function errorCode(error: CombinedError | undefined): string | undefined {
  return error?.graphQLErrors[0]?.extensions?.code as string | undefined;
}
