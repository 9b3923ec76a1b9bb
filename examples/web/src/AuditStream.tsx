import { useEffect, useRef, useState } from 'react';
import { print } from 'graphql';
import { useQuery } from 'urql';
import type { Client as WsClient } from 'graphql-ws';
import { graphql } from './gql';
import type { AuditStreamSubscription } from './gql/graphql';

const AuditStreamDoc = graphql(`
  subscription AuditStream($org: ID!, $after: String) {
    auditEvents(organizationId: $org, after: $after) { sequence action entityType }
  }
`);

const Latest = graphql(`
  query LatestAuditEvent($org: ID!) {
    organization(id: $org) { auditEvents(last: 1) { nodes { sequence } } }
  }
`);

type Event = AuditStreamSubscription['auditEvents'];

/**
 * The organization's audit events, live. `last` is the last sequence processed: every
 * (re)subscription passes it as `after`, so pausing, a dropped socket or a server restart
 * loses nothing and repeats nothing. It starts at the latest event when the page opened.
 */
export function AuditStream({ ws, organizationId }: { ws: WsClient; organizationId: string }) {
  const [events, setEvents] = useState<Event[]>([]);
  const [paused, setPaused] = useState(false);
  const last = useRef<string | null>(null);
  const [{ data }] = useQuery({ query: Latest, variables: { org: organizationId }, requestPolicy: 'network-only' });
  const start = data ? (data.organization?.auditEvents.nodes[0]?.sequence ?? null) : undefined;
  useEffect(() => {
    if (paused || start === undefined) return;
    last.current ??= start;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let unsubscribe = () => {};
    const subscribe = () => {
      unsubscribe = ws.subscribe<AuditStreamSubscription>(
        { query: print(AuditStreamDoc), variables: { org: organizationId, after: last.current } },
        {
          next: ({ data }) => {
            if (!data) return;
            last.current = data.auditEvents.sequence;
            setEvents((seen) => [data.auditEvents, ...seen].slice(0, 50));
          },
          // The socket closed or the stream ended: resume from `last` in a second.
          error: () => { if (!stopped) retry = setTimeout(subscribe, 1000); },
          complete: () => { if (!stopped) retry = setTimeout(subscribe, 1000); },
        },
      );
    };
    subscribe();
    return () => {
      stopped = true;
      clearTimeout(retry);
      unsubscribe();
    };
  }, [ws, organizationId, paused, start]);
  return (
    <div className="audit">
      <h2>
        Audit stream{' '}
        <button onClick={() => setPaused(!paused)}>{paused ? 'Resume' : 'Pause'}</button>
      </h2>
      <p className="status">{paused ? `paused after #${last.current}` : start === undefined ? 'connecting…' : 'live'}</p>
      <ol>
        {events.map((e) => (
          <li key={e.sequence} data-sequence={e.sequence}>#{e.sequence} {e.action} <small>{e.entityType}</small></li>
        ))}
      </ol>
    </div>
  );
}
