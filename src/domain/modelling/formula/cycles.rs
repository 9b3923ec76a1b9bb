//! Recursion across periods: which dependency cycles between metrics are allowed, and the order
//! of metrics and periods that computes every cell after everything it reads.
//!
//! # The rule
//!
//! The dependency graph has an edge from a metric to every metric its formula reads, itself
//! included, labelled with the period offsets it reads it at
//! ([`metric_reads`](super::metric_reads)). A cycle is
//! allowed when every path around it reads other periods in one direction of time: all offsets
//! `≤ 0` with at least one `< 0` (evaluated forward, first period to last, like
//! `revenue = revenue[-1] * (1 + growth_rate)`), or all `≥ 0` with at least one `> 0` (evaluated
//! backward, last period to first, like `value_to_go = free_cash_flow + value_to_go[1] * 0.97`,
//! whose last period is a stored seed or reads past the timeline, `null`); and all the cycles
//! that share a metric run in the same direction.
//!
//! Checked per strongly connected component (every cycle lies within one, and the cycles of one
//! component are linked by shared metrics): all the offsets on the edges inside a component are
//! `≤ 0`, or all are `≥ 0`, and the edges that read the same period (offset `0`) form no cycle,
//! since a one-signed cycle sums to zero exactly when all its offsets are zero.
//!
//! # How a refused cycle is named
//!
//! [`Cycle`] prints as a closed walk through the dependency graph: the first metric, then each
//! metric read by the previous one's formula, at the offset that formula reads it
//! (`key[offset]`, or just `key` for the same period), back to the first metric. The walk starts
//! at its alphabetically first metric. A cycle within one period prints as `a → b → a` or
//! `x → x` (`x = sum(x, 3)`); cycles of both directions print as one walk through an edge of
//! each, `x → x[1] → x[-1]` for `x = x[-1] + x[1]`, `a → a[-1] → b → a[1]` for
//! `a = a[-1] + b` with `b = a[1]`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::{self, Write as _},
};

use petgraph::{
    algo::{astar, kosaraju_scc},
    graph::{DiGraph, NodeIndex},
};

use super::analysis::{Reads, topological_order};

/// The dependency graph with offsets: for each metric, what
/// [`metric_reads`](super::metric_reads) gives for its
/// formula (an INPUT metric has an empty entry or none). A metric only read, never a key, is a
/// node without edges of its own.
pub type ReadGraph = BTreeMap<String, BTreeMap<String, Reads>>;

/// The order of periods in which a [`Component`] is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// No cycle: every value it reads is computed before, in any order of periods (ascending).
    Acyclic,
    /// Its cycles read earlier periods: first period to last.
    Forward,
    /// Its cycles read later periods: last period to first.
    Backward,
}

/// Metrics computed together, period by period: a strongly connected component of the
/// dependency graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Its metrics, each after the ones it reads in the same period; computed in this order
    /// within each period.
    pub metrics: Vec<String>,
    /// The order of its periods.
    pub direction: Direction,
}

/// Why a [`Cycle`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CycleKind {
    /// Every step reads the same period: the cell would read itself.
    SamePeriod,
    /// Cycles through the same metrics read earlier and later periods: neither order of periods
    /// computes every cell after what it reads.
    BothDirections,
}

/// A refused cycle, as a closed walk: `start`, then each `(metric, offset)` read by the
/// previous metric's formula; the last step is back at `start`. Printed as described in the
/// module docs: `x → x[1] → x[-1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Why it is refused.
    pub kind: CycleKind,
    /// The metric the walk starts and ends at (the alphabetically first on it).
    pub start: String,
    /// Each step: the metric read and the offset it is read at.
    pub steps: Vec<(String, i32)>,
}

impl Cycle {
    /// A cycle from the closed walk `nodes[0] → nodes[1] → … → nodes[0]` (`nodes` without the
    /// closing repeat), `offsets[i]` being the offset of the step into `nodes[i + 1]` (the last
    /// one into `nodes[0]`), rotated to start at its alphabetically first metric.
    fn rotated(kind: CycleKind, nodes: &[&str], offsets: &[i32]) -> Self {
        let len = nodes.len().min(offsets.len());
        let first = (0..len).min_by_key(|&i| nodes[i]).unwrap_or(0);
        let steps = (0..len)
            .map(|k| {
                let i = (first + k) % len;
                (nodes[(i + 1) % len].to_owned(), offsets[i])
            })
            .collect();
        Self {
            kind,
            start: nodes.get(first).copied().unwrap_or_default().to_owned(),
            steps,
        }
    }

    /// The walk alone: `x → x[1] → x[-1]`.
    pub fn path(&self) -> String {
        let mut out = self.start.clone();
        for (key, offset) in &self.steps {
            out.push_str(" → ");
            out.push_str(key);
            if *offset != 0 {
                // Writing to a `String` cannot fail.
                let _ = write!(out, "[{offset}]");
            }
        }
        out
    }
}

impl fmt::Display for Cycle {
    /// `within one period: a → b → a`, or `reading both earlier and later periods: x → x[1] →
    /// x[-1]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.kind {
            CycleKind::SamePeriod => "within one period",
            CycleKind::BothDirections => "reading both earlier and later periods",
        };
        write!(f, "{why}: {}", self.path())
    }
}

/// The metrics of `graph` grouped into [`Component`]s, each after every component it reads; or
/// the first cycle that breaks the rule of the module docs.
///
/// Deterministic: the same graph always gives the same order and reports the same cycle. Linear
/// in the size of the graph and iterative (no recursion per metric), so a long chain of metrics
/// cannot exhaust the stack.
///
/// ```
/// use std::collections::BTreeMap;
/// use finvision::domain::modelling::formula::{
///     Direction, ReadGraph, metric_reads, parse, schedule,
/// };
///
/// let formulas = [("value_to_go", "fcf + value_to_go[1] * 0.97"), ("fcf", "cash - capex")];
/// let keys = ["value_to_go", "fcf", "cash", "capex"];
/// let graph: ReadGraph = formulas
///     .iter()
///     .map(|(k, f)| (k.to_string(), metric_reads(&parse(f).unwrap(), k, &keys[..])))
///     .collect();
/// let plan = schedule(&graph).unwrap();
/// // `fcf` first (after `cash` and `capex`), then `value_to_go`, last period to first.
/// let last = plan.last().unwrap();
/// assert_eq!(last.metrics, ["value_to_go"]);
/// assert_eq!(last.direction, Direction::Backward);
///
/// let mixed: ReadGraph = BTreeMap::from([(
///     "x".to_string(),
///     metric_reads(&parse("x[-1] + x[1]").unwrap(), "x", &["x"][..]),
/// )]);
/// assert_eq!(
///     schedule(&mixed).unwrap_err().to_string(),
///     "reading both earlier and later periods: x → x[1] → x[-1]"
/// );
/// ```
pub fn schedule(graph: &ReadGraph) -> Result<Vec<Component>, Cycle> {
    let names: BTreeSet<&str> = graph
        .iter()
        .flat_map(|(k, reads)| std::iter::once(k.as_str()).chain(reads.keys().map(String::as_str)))
        .collect();
    let mut g: DiGraph<&str, Reads> = DiGraph::with_capacity(names.len(), names.len());
    let node: HashMap<&str, NodeIndex> = names.iter().map(|n| (*n, g.add_node(n))).collect();
    for (from, reads) in graph {
        for (to, r) in reads {
            if let (Some(&a), Some(&b)) = (node.get(from.as_str()), node.get(to.as_str())) {
                g.add_edge(a, b, *r);
            }
        }
    }

    // Kosaraju's components come dependencies first: a component only reads earlier ones.
    let mut plan = Vec::new();
    for members in kosaraju_scc(&g) {
        let members: BTreeSet<&str> = members.into_iter().map(|i| g[i]).collect();
        // The component's own edges, in key order, so that the cycle reported is always the same.
        let inside: Vec<(&str, &str, Reads)> = members
            .iter()
            .flat_map(|from| {
                graph
                    .get(*from)
                    .into_iter()
                    .flatten()
                    .filter(|(to, _)| members.contains(to.as_str()))
                    .map(|(to, r)| (*from, to.as_str(), *r))
            })
            .collect();

        let mut same_period: BTreeMap<String, BTreeSet<String>> = members
            .iter()
            .map(|m| ((*m).to_owned(), BTreeSet::new()))
            .collect();
        for (from, to, _) in inside.iter().filter(|(_, _, r)| r.same) {
            if let Some(reads) = same_period.get_mut(*from) {
                reads.insert((*to).to_owned());
            }
        }
        let order = topological_order(&same_period).map_err(|path| {
            // `path` ends where it starts: drop the repeat to get the walk's nodes.
            let nodes: Vec<&str> = path[..path.len().saturating_sub(1)]
                .iter()
                .map(String::as_str)
                .collect();
            Cycle::rotated(CycleKind::SamePeriod, &nodes, &vec![0; nodes.len()])
        })?;

        let earlier = inside.iter().find(|(_, _, r)| r.earlier.is_some());
        let later = inside.iter().find(|(_, _, r)| r.later.is_some());
        let direction = match (earlier, later) {
            (Some(back), Some(ahead)) => {
                return Err(both_directions(&g, &node, graph, *ahead, *back));
            }
            (Some(_), None) => Direction::Forward,
            (None, Some(_)) => Direction::Backward,
            (None, None) => Direction::Acyclic,
        };
        plan.push(Component {
            metrics: order,
            direction,
        });
    }
    Ok(plan)
}

/// A closed walk through an edge reading a later period (`ahead`) and one reading an earlier
/// period (`back`) of the same component: `ahead`, the shortest path to `back`'s start, `back`,
/// the shortest path to `ahead`'s start. The paths exist and stay in the component, since both
/// edges are in it.
fn both_directions(
    g: &DiGraph<&str, Reads>,
    node: &HashMap<&str, NodeIndex>,
    graph: &ReadGraph,
    ahead: (&str, &str, Reads),
    back: (&str, &str, Reads),
) -> Cycle {
    let mut nodes: Vec<&str> = Vec::new();
    let mut offsets: Vec<i32> = Vec::new();
    for ((from, to, reads), offset, next) in [
        (ahead, ahead.2.later, back.0),
        (back, back.2.earlier, ahead.0),
    ] {
        nodes.push(from);
        offsets.push(offset.unwrap_or_else(|| reads.nearest()));
        let path = match (node.get(to), node.get(next)) {
            (Some(&a), Some(&b)) => astar(g, a, |n| n == b, |_| 1u32, |_| 0).map(|(_, p)| p),
            _ => None,
        }
        // Unreachable within a component; the walk would only be shorter than the truth.
        .unwrap_or_default();
        for pair in path.windows(2) {
            let (a, b) = (g[pair[0]], g[pair[1]]);
            nodes.push(a);
            let step = graph.get(a).and_then(|r| r.get(b)).copied();
            offsets.push(step.unwrap_or_default().nearest());
        }
    }
    Cycle::rotated(CycleKind::BothDirections, &nodes, &offsets)
}
