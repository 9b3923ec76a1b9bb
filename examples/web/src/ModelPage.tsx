import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { errorCode, errorMessage } from './api';
import { graphql } from './gql';
import { Chart } from './Chart';

const Model = graphql(`
  query Model($id: ID!) {
    model(id: $id) {
      id name currency
      scenarios(first: 50) { nodes { id name kind version } }
      metrics { key name unit }
    }
  }
`);

const Compare = graphql(`
  query Compare($base: ID!, $other: ID!, $metric: String!) {
    scenario(id: $base) {
      compare(otherScenarioId: $other, metricKeys: [$metric]) {
        metric { name unit }
        points { period base other delta }
      }
    }
  }
`);

const RenameScenario = graphql(`
  mutation RenameScenario($id: ID!, $version: Int!, $name: String!) {
    updateScenario(input: { id: $id, version: $version, name: $name }) { id name version }
  }
`);

export function ModelPage({ id }: { id: string }) {
  const [{ data, error }, reload] = useQuery({ query: Model, variables: { id } });
  const model = data?.model;
  const scenarios = model?.scenarios.nodes ?? [];
  const [base, setBase] = useState<string>();
  const [other, setOther] = useState<string>();
  const [metric, setMetric] = useState<string>();
  if (error) return <p role="alert">{errorMessage(error)}</p>;
  if (!model) return <p>Loading…</p>;
  const baseId = base ?? scenarios.find((s) => s.kind === 'BASE')?.id ?? scenarios[0]?.id;
  const otherId = other ?? scenarios.find((s) => s.id !== baseId)?.id;
  const metricKey = metric ?? model.metrics[0]?.key;
  const pick = (label: string, value: string | undefined, set: (v: string) => void) => (
    <label>
      {label}{' '}
      <select name={label} value={value} onChange={(e) => set(e.target.value)}>
        {scenarios.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
      </select>
    </label>
  );
  const renamed = scenarios.find((s) => s.id === otherId);
  return (
    <div>
      <h2>{model.name}</h2>
      <p className="pickers">
        {pick('base', baseId, setBase)} {pick('other', otherId, setOther)}{' '}
        <label>
          metric{' '}
          <select name="metric" value={metricKey} onChange={(e) => setMetric(e.target.value)}>
            {model.metrics.map((m) => <option key={m.key} value={m.key}>{m.name}</option>)}
          </select>
        </label>
      </p>
      {baseId && otherId && metricKey && <Comparison base={baseId} other={otherId} metric={metricKey} currency={model.currency} />}
      {renamed && (
        <Rename key={`${renamed.id}@${renamed.version}`} scenario={renamed}
          onReload={() => reload({ requestPolicy: 'network-only' })} />
      )}
    </div>
  );
}

function Comparison(props: { base: string; other: string; metric: string; currency: string }) {
  const [{ data, error }] = useQuery({ query: Compare, variables: props });
  if (error) return <p role="alert">{errorMessage(error)}</p>;
  const comparison = data?.scenario?.compare[0];
  if (!comparison) return <p>Loading…</p>;
  const unit = comparison.metric.unit === 'CURRENCY' ? props.currency : comparison.metric.unit.toLowerCase();
  return <Chart title={comparison.metric.name} unit={unit} points={comparison.points} />;
}

/** Optimistic concurrency: the update carries the version we read; a stale one is a CONFLICT. */
function Rename({ scenario, onReload }: {
  scenario: { id: string; name: string; version: number };
  onReload: () => void;
}) {
  const [name, setName] = useState(scenario.name);
  const [result, rename] = useMutation(RenameScenario);
  const conflict = errorCode(result.error) === 'CONFLICT';
  return (
    <form className="rename" onSubmit={(e) => { e.preventDefault(); void rename({ id: scenario.id, version: scenario.version, name }); }}>
      <label>
        Rename “{scenario.name}” (version {scenario.version}){' '}
        <input name="scenario-name" value={name} onChange={(e) => setName(e.target.value)} />
      </label>{' '}
      <button type="submit" disabled={result.fetching}>Save</button>
      {conflict && (
        <p role="alert" className="conflict">
          Someone else changed this scenario since you loaded it ({errorMessage(result.error!)}).{' '}
          <button type="button" onClick={onReload}>Load their version</button>
        </p>
      )}
      {result.error && !conflict && <p role="alert">{errorMessage(result.error)}</p>}
    </form>
  );
}
