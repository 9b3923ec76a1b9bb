//! What a formula reads (keys, offsets, the metrics it depends on) and whether its keys are allowed.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    hash::BuildHasher,
};

use super::{Expr, FormulaError};

/// A key read by a formula: every offset it is read at, and where it is first written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The metric or parameter key.
    pub key: String,
    /// Every period offset the key is read at, ascending and without duplicates; a `sum` adds
    /// each of its periods (`sum(x, 3)` reads `x` at `-2`, `-1` and `0`).
    pub offsets: Vec<i32>,
    /// Where the key first appears in the source (0-based characters).
    pub position: usize,
}

/// One appearance of a key in a formula: `key[offset]` (count 1) or `sum(key[offset], count)`.
struct Use<'a> {
    key: &'a str,
    /// The latest period read.
    offset: i32,
    /// How many periods, going back from `offset`.
    count: u32,
    position: usize,
}

impl Use<'_> {
    /// The offsets read, latest first.
    fn offsets(&self) -> impl Iterator<Item = i32> + '_ {
        // Parsed formulas keep offset and count within ±10 000, so this cannot overflow; the
        // saturation only guards hand-built expressions.
        (0..self.count).map(|k| {
            self.offset
                .saturating_sub(i32::try_from(k).unwrap_or(i32::MAX))
        })
    }

    fn earliest(&self) -> i32 {
        self.offset
            .saturating_sub(i32::try_from(self.count.saturating_sub(1)).unwrap_or(i32::MAX))
    }
}

/// Every use of a key, in source order.
fn uses<'a>(expr: &'a Expr, out: &mut Vec<Use<'a>>) {
    match expr {
        Expr::Number(_) => {}
        Expr::Ref {
            key,
            offset,
            position,
        } => out.push(Use {
            key,
            offset: *offset,
            count: 1,
            position: *position,
        }),
        Expr::Sum {
            key,
            offset,
            count,
            position,
        } => out.push(Use {
            key,
            offset: *offset,
            count: *count,
            position: *position,
        }),
        Expr::Neg(inner) | Expr::Abs(inner) => uses(inner, out),
        Expr::Binary { lhs, rhs, .. } => {
            uses(lhs, out);
            uses(rhs, out);
        }
        Expr::Min(args) | Expr::Max(args) => args.iter().for_each(|a| uses(a, out)),
        Expr::If {
            cond,
            then,
            otherwise,
        } => {
            uses(&cond.lhs, out);
            uses(&cond.rhs, out);
            uses(then, out);
            uses(otherwise, out);
        }
    }
}

/// Every key `expr` reads, in order of first appearance, each with every offset it is read at.
///
/// Both branches of an `if` count: dependencies are static, whatever the data selects.
///
/// ```
/// use finvision::domain::modelling::formula::{parse, references};
///
/// let refs = references(&parse("sum(revenue, 3) / revenue[-1] + rate").unwrap());
/// assert_eq!(refs[0].key, "revenue");
/// assert_eq!(refs[0].offsets, vec![-2, -1, 0]);
/// assert_eq!((refs[1].key.as_str(), refs[1].position), ("rate", 32));
/// ```
pub fn references(expr: &Expr) -> Vec<Reference> {
    let mut all = Vec::new();
    uses(expr, &mut all);
    let mut order: Vec<(&str, usize)> = Vec::new();
    let mut offsets: HashMap<&str, BTreeSet<i32>> = HashMap::new();
    for u in &all {
        let set = offsets.entry(u.key).or_insert_with(|| {
            order.push((u.key, u.position));
            BTreeSet::new()
        });
        set.extend(u.offsets());
    }
    order
        .into_iter()
        .map(|(key, position)| Reference {
            key: key.to_owned(),
            offsets: offsets
                .get(key)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
            position,
        })
        .collect()
}

/// The metrics `expr` depends on, other than `own_key` itself: the edges of the dependency
/// graph (`metric_dependencies`) for the metric whose formula it is.
pub fn metric_dependencies<M: KeySet + ?Sized>(
    expr: &Expr,
    own_key: &str,
    metric_keys: &M,
) -> BTreeSet<String> {
    let mut all = Vec::new();
    uses(expr, &mut all);
    all.into_iter()
        .filter(|u| u.key != own_key && metric_keys.has_key(u.key))
        .map(|u| u.key.to_owned())
        .collect()
}

/// The periods one formula reads one metric at, as the cycle rule needs them (see
/// [`schedule`](super::schedule)): the nearest earlier period, whether the same period, and the
/// nearest later period. `x[-3] + sum(x[2], 2)` reads `x` at `-3`, `1` and `2`: `earlier` is
/// `-3`, `same` is false, `later` is `1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reads {
    /// The latest of the earlier periods read (a negative offset), if any.
    pub earlier: Option<i32>,
    /// Whether the current period itself is read (`x`, `x[0]`, `sum(x, 3)`).
    pub same: bool,
    /// The earliest of the later periods read (a positive offset), if any.
    pub later: Option<i32>,
}

impl Reads {
    /// Add the periods `earliest..=latest` (one reference, or the periods of a `sum`).
    fn add(&mut self, earliest: i32, latest: i32) {
        if earliest < 0 {
            let nearest = latest.min(-1);
            self.earlier = Some(self.earlier.map_or(nearest, |e| e.max(nearest)));
        }
        if earliest <= 0 && latest >= 0 {
            self.same = true;
        }
        if latest > 0 {
            let nearest = earliest.max(1);
            self.later = Some(self.later.map_or(nearest, |l| l.min(nearest)));
        }
    }

    /// One offset that is read, to show a step of a cycle: the current period if it is read,
    /// else the nearest earlier one, else the nearest later one.
    pub fn nearest(&self) -> i32 {
        if self.same {
            0
        } else {
            self.earlier.or(self.later).unwrap_or(0)
        }
    }
}

/// Every metric `expr` reads, the metric `own_key` itself included, with the periods it reads
/// it at: the edges of the dependency graph with their offsets, which decide whether a cycle
/// through them is allowed ([`schedule`](super::schedule)). Parameters are left out: they have
/// one value for every period and are never part of a cycle.
///
/// ```
/// use finvision::domain::modelling::formula::{Reads, metric_reads, parse};
///
/// let metrics = ["value_to_go", "free_cash_flow"];
/// let expr = parse("free_cash_flow + value_to_go[1] * rate").unwrap();
/// let reads = metric_reads(&expr, "value_to_go", &metrics[..]);
/// assert_eq!(reads["value_to_go"], Reads { earlier: None, same: false, later: Some(1) });
/// assert_eq!(reads["free_cash_flow"], Reads { earlier: None, same: true, later: None });
/// assert!(!reads.contains_key("rate"));
/// ```
pub fn metric_reads<M: KeySet + ?Sized>(
    expr: &Expr,
    own_key: &str,
    metric_keys: &M,
) -> BTreeMap<String, Reads> {
    let mut all = Vec::new();
    uses(expr, &mut all);
    let mut reads: BTreeMap<String, Reads> = BTreeMap::new();
    for u in all
        .iter()
        .filter(|u| u.key == own_key || metric_keys.has_key(u.key))
    {
        reads
            .entry(u.key.to_owned())
            .or_default()
            .add(u.earliest(), u.offset);
    }
    reads
}

/// A set of keys, so that [`validate`] accepts whatever collection the caller holds.
pub trait KeySet {
    /// Whether `key` is in the set.
    fn has_key(&self, key: &str) -> bool;
}

impl<S: BuildHasher> KeySet for HashSet<String, S> {
    fn has_key(&self, key: &str) -> bool {
        self.contains(key)
    }
}

impl KeySet for BTreeSet<String> {
    fn has_key(&self, key: &str) -> bool {
        self.contains(key)
    }
}

impl<V, S: BuildHasher> KeySet for HashMap<String, V, S> {
    fn has_key(&self, key: &str) -> bool {
        self.contains_key(key)
    }
}

impl<V, S: BuildHasher> KeySet for HashMap<&str, V, S> {
    fn has_key(&self, key: &str) -> bool {
        self.contains_key(key)
    }
}

impl<V> KeySet for BTreeMap<String, V> {
    fn has_key(&self, key: &str) -> bool {
        self.contains_key(key)
    }
}

impl KeySet for [&str] {
    fn has_key(&self, key: &str) -> bool {
        self.contains(&key)
    }
}

impl KeySet for [String] {
    fn has_key(&self, key: &str) -> bool {
        self.iter().any(|k| k == key)
    }
}

impl<T: KeySet + ?Sized> KeySet for &T {
    fn has_key(&self, key: &str) -> bool {
        (**self).has_key(key)
    }
}

/// Check the keys of the formula of the metric `own_key`, against the model's metric and
/// parameter keys. The first problem in source order is reported, at the position of the key:
///
/// - a key that is neither a metric nor a parameter;
/// - a key that is both (the model should prevent it; the formula would be ambiguous);
/// - a parameter read with an offset or summed: a parameter has one value for all periods.
///
/// A metric reading itself (`revenue[-1]` in `revenue`'s formula) is a cycle like any other:
/// whether it is allowed is decided over the whole model by [`schedule`](super::schedule), with
/// the cycles through other metrics.
///
/// ```
/// use finvision::domain::modelling::formula::{parse, validate};
///
/// let metrics = ["revenue", "cogs"];
/// let params = ["growth_rate"];
/// let ok = parse("revenue[-1] * (1 + growth_rate)").unwrap();
/// assert!(validate(&ok, "revenue", &metrics[..], &params[..]).is_ok());
/// let bad = parse("revenue[-1] * (1 + growth_rate[-1])").unwrap();
/// assert_eq!(validate(&bad, "revenue", &metrics[..], &params[..]).unwrap_err().position, 19);
/// ```
pub fn validate<M: KeySet + ?Sized, P: KeySet + ?Sized>(
    expr: &Expr,
    own_key: &str,
    metric_keys: &M,
    parameter_keys: &P,
) -> Result<(), FormulaError> {
    let mut all = Vec::new();
    uses(expr, &mut all);
    for u in &all {
        let at = u.position + 1;
        let key = u.key;
        let is_metric = metric_keys.has_key(key) || key == own_key;
        let is_parameter = parameter_keys.has_key(key);
        match (is_metric, is_parameter) {
            (false, false) => {
                return Err(FormulaError::new(
                    u.position,
                    format!(
                        "unknown key `{key}` at column {at}: no metric or parameter of this \
                         model has this key"
                    ),
                ));
            }
            (true, true) => {
                return Err(FormulaError::new(
                    u.position,
                    format!(
                        "`{key}` at column {at} is both a metric and a parameter of this model; \
                         rename one of them"
                    ),
                ));
            }
            (false, true) if u.count > 1 => {
                return Err(FormulaError::new(
                    u.position,
                    format!(
                        "`{key}` at column {at} is a parameter, which has one value for every \
                         period: it cannot be summed over periods"
                    ),
                ));
            }
            (false, true) if u.offset != 0 => {
                return Err(FormulaError::new(
                    u.position,
                    format!(
                        "`{key}` at column {at} is a parameter, which has one value for every \
                         period: it cannot take a period offset such as `[{}]`",
                        u.offset
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every metric of `graph` (keys and the metrics they depend on), each after all the metrics it
/// depends on; or a cycle that makes that impossible, as a path that starts and ends at the same
/// metric (`["a", "b", "c", "a"]`, or `["a", "a"]` for an edge of a metric to itself).
///
/// [`schedule`](super::schedule) uses it for the edges within one period, where any cycle is
/// refused. Deterministic: among metrics whose order is free, keys are visited alphabetically,
/// and the same graph always reports the same cycle.
pub fn topological_order(
    graph: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<String>, Vec<String>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        /// On the current path of the search.
        Active,
        /// Already placed in the order, with everything it depends on.
        Done,
    }
    static NO_DEPENDENCIES: BTreeSet<String> = BTreeSet::new();
    let dependencies_of = |node: &str| graph.get(node).unwrap_or(&NO_DEPENDENCIES);

    let nodes: BTreeSet<&str> = graph
        .iter()
        .flat_map(|(k, deps)| std::iter::once(k.as_str()).chain(deps.iter().map(String::as_str)))
        .collect();
    let mut marks: HashMap<&str, Mark> = HashMap::with_capacity(nodes.len());
    let mut order = Vec::with_capacity(nodes.len());

    // An explicit stack rather than recursion: a long chain of metrics cannot overflow it.
    for root in nodes {
        if marks.contains_key(root) {
            continue;
        }
        marks.insert(root, Mark::Active);
        let mut stack = vec![(root, dependencies_of(root).iter())];
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            let Some(dependency) = pending.next() else {
                marks.insert(node, Mark::Done);
                order.push(node.to_owned());
                stack.pop();
                continue;
            };
            let dependency = dependency.as_str();
            match marks.get(dependency) {
                Some(Mark::Done) => {}
                Some(Mark::Active) => {
                    let start = stack
                        .iter()
                        .position(|(n, _)| *n == dependency)
                        .unwrap_or(0);
                    let mut cycle: Vec<String> = stack[start..]
                        .iter()
                        .map(|(n, _)| (*n).to_owned())
                        .collect();
                    cycle.push(dependency.to_owned());
                    return Err(cycle);
                }
                None => {
                    marks.insert(dependency, Mark::Active);
                    stack.push((dependency, dependencies_of(dependency).iter()));
                }
            }
        }
    }
    Ok(order)
}
