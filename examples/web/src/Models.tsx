import { useState } from 'react';
import { useQuery } from 'urql';
import { graphql } from './gql';

const PAGE_SIZE = 5;

const ModelsPage = graphql(`
  query ModelsPage($org: ID!, $first: Int!, $after: String) {
    organization(id: $org) {
      models(first: $first, after: $after, orderBy: { field: NAME }) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id name periodGranularity }
      }
    }
  }
`);

type Props = { organizationId: string; onOpen: (id: string) => void };

/** Relay pagination: one query per page, each after the previous page's `endCursor`. */
export function Models(props: Props) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  return (
    <div>
      <h2>Models</h2>
      <ul className="models">
        {cursors.map((after, i) => (
          <Page key={after ?? 'first'} {...props} after={after} last={i === cursors.length - 1}
            onMore={(cursor) => setCursors([...cursors, cursor])} />
        ))}
      </ul>
    </div>
  );
}

function Page({ organizationId, onOpen, after, last, onMore }: Props & {
  after: string | null;
  last: boolean;
  onMore: (cursor: string) => void;
}) {
  const [{ data, fetching }] = useQuery({
    query: ModelsPage,
    variables: { org: organizationId, first: PAGE_SIZE, after },
  });
  const models = data?.organization?.models;
  if (!models) return fetching ? <li>Loading…</li> : null;
  const { hasNextPage, endCursor } = models.pageInfo;
  return (
    <>
      {models.nodes.map((m) => (
        <li key={m.id}>
          <button className="model" onClick={() => onOpen(m.id)}>{m.name}</button> <small>{m.periodGranularity}</small>
        </li>
      ))}
      {last && hasNextPage && endCursor && (
        <li><button className="more" onClick={() => onMore(endCursor)}>Load more (of {models.totalCount})</button></li>
      )}
    </>
  );
}
