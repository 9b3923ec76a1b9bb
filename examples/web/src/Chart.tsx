type Point = { period: string; base?: string | null; other?: string | null; delta?: string | null };

const W = 640;
const H = 240;
const PAD = 48;

/**
 * Base and other as lines, the delta as bars. Decimals arrive as exact strings: they are turned
 * into floats here, only to be drawn; a null leaves a gap.
 */
export function Chart({ title, unit, points }: { title: string; unit: string; points: Point[] }) {
  const num = (v: string | null | undefined) => (v == null ? null : Number(v));
  const values = points.flatMap((p) => [num(p.base), num(p.other), num(p.delta)]).filter((v) => v !== null);
  const lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  const x = (i: number) => PAD + (i + 0.5) * ((W - 2 * PAD) / points.length);
  const y = (v: number) => H - PAD - ((v - lo) / (hi - lo || 1)) * (H - 2 * PAD);
  // One path per run of non-null points: a null is a gap, not a zero.
  const line = (field: 'base' | 'other') =>
    points
      .map((p, i) => {
        const v = num(p[field]);
        const prev = i > 0 ? num(points[i - 1][field]) : null;
        return v === null ? '' : `${prev === null ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      })
      .join(' ');
  const barWidth = ((W - 2 * PAD) / points.length) * 0.5;
  return (
    <figure className="chart">
      <figcaption>
        {title} ({unit}): <span className="key-base">base</span>, <span className="key-other">other</span>,{' '}
        <span className="key-delta">Δ as bars</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title} comparison`}>
        <line x1={PAD} x2={W - PAD} y1={y(0)} y2={y(0)} className="axis" />
        <text x={4} y={PAD - 24} className="label">{unit}</text>
        <text x={4} y={y(hi) + 4} className="label">{Math.round(hi).toLocaleString()}</text>
        <text x={4} y={y(lo) + 4} className="label">{Math.round(lo).toLocaleString()}</text>
        {points.map((p, i) => {
          const d = num(p.delta);
          return d === null ? null : (
            <rect key={p.period} className="series delta" x={x(i) - barWidth / 2} width={barWidth}
              y={Math.min(y(d), y(0))} height={Math.abs(y(d) - y(0))} />
          );
        })}
        <path className="series base" d={line('base')} />
        <path className="series other" d={line('other')} />
        <text x={x(0)} y={H - PAD + 16} className="label">{points[0]?.period}</text>
        <text x={x(points.length - 1)} y={H - PAD + 16} className="label" textAnchor="end">{points.at(-1)?.period}</text>
      </svg>
    </figure>
  );
}
