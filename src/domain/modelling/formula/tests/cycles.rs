//! Recursion across periods: the cycle rule against a brute-force judge, evaluation against a
//! naive memoised evaluator, the examples of the data model, and long timelines.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    str::FromStr,
};

use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::domain::modelling::formula::{
    BinaryOp, CompareOp, Component, Condition, CycleKind, Direction, EvalError, Expr, MetricDef,
    ModelInput, ReadGraph, Reads, evaluate, metric_reads, parse, schedule,
};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// The graph of `(key, formula)` pairs, every key a metric.
fn graph_of(formulas: &[(&str, &str)]) -> ReadGraph {
    let keys: Vec<&str> = formulas.iter().map(|(k, _)| *k).collect();
    formulas
        .iter()
        .map(|(k, f)| {
            (
                (*k).to_owned(),
                metric_reads(&parse(f).unwrap(), k, &keys[..]),
            )
        })
        .collect()
}

/// `schedule`'s verdict on `formulas`: the plan, or the refused cycle as printed.
fn judge(formulas: &[(&str, &str)]) -> Result<Vec<Component>, String> {
    schedule(&graph_of(formulas)).map_err(|c| c.to_string())
}

fn component(metrics: &[&str], direction: Direction) -> Component {
    Component {
        metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
        direction,
    }
}

#[test]
fn the_examples_of_the_data_model() {
    use Direction::{Acyclic, Backward, Forward};
    // Forward, backward, and a forward cycle through two metrics (a balance carried over).
    assert_eq!(
        judge(&[("revenue", "revenue[-1] * 1.1")]),
        Ok(vec![component(&["revenue"], Forward)])
    );
    assert_eq!(
        judge(&[
            ("value_to_go", "free_cash_flow + value_to_go[1] * 0.97"),
            ("free_cash_flow", "1")
        ]),
        Ok(vec![
            component(&["free_cash_flow"], Acyclic),
            component(&["value_to_go"], Backward)
        ])
    );
    // Within a period, `opening` is read by `closing`, so it comes first.
    assert_eq!(
        judge(&[("closing", "opening + 5"), ("opening", "closing[-1]")]),
        Ok(vec![component(&["opening", "closing"], Forward)])
    );
    assert_eq!(
        judge(&[("a", "b[2] + a[1]"), ("b", "sum(a[3], 3)")]),
        Ok(vec![component(&["a", "b"], Backward)])
    );
    // `sum(x[-1], 3)` reads -1, -2, -3: forward; two cycles through `x` in one direction.
    assert_eq!(
        judge(&[("x", "sum(x[-1], 3) + y[-2]"), ("y", "x")]),
        Ok(vec![component(&["x", "y"], Forward)])
    );

    for (formulas, refused) in [
        (
            &[("a", "b"), ("b", "a")][..],
            "within one period: a → b → a",
        ),
        (&[("x", "sum(x, 3)")][..], "within one period: x → x"),
        (
            &[("x", "x[-1] + x[1]")][..],
            "reading both earlier and later periods: x → x[1] → x[-1]",
        ),
        (
            &[("a", "a[-1] + b"), ("b", "a[1]")][..],
            "reading both earlier and later periods: a → a[-1] → b → a[1]",
        ),
        // A cycle whose offsets cancel out is refused although no step reads the same period.
        (
            &[("a", "b[-1]"), ("b", "a[1]")][..],
            "reading both earlier and later periods: a → b[-1] → a[1]",
        ),
        // Two one-way cycles that share `a` but run in opposite directions.
        (
            &[("a", "b[-1] + c[1]"), ("b", "a"), ("c", "a")][..],
            "reading both earlier and later periods: a → c[1] → a → b[-1] → a",
        ),
        // `sum(x[1], 3)` reads 1, 0 and -1: both directions and the same period.
        (&[("x", "sum(x[1], 3)")][..], "within one period: x → x"),
    ] {
        assert_eq!(judge(formulas), Err(refused.to_owned()), "{formulas:?}");
    }
}

#[test]
fn components_come_after_what_they_read() {
    let plan = judge(&[
        ("profit", "revenue - costs"),
        ("costs", "cogs + opex[-1]"),
        ("opex", "opex[-1] * 1.01 + headcount"),
        ("revenue", "revenue[-1] + profit[-1] * 0.1"),
        ("cogs", "revenue * 0.4"),
        ("headcount", "3"),
    ])
    .unwrap();
    let at = |key: &str| plan.iter().position(|c| c.metrics.iter().any(|m| m == key));
    assert!(at("headcount") < at("opex"));
    assert!(at("opex") < at("profit"));
    // revenue, cogs, costs and profit are one forward cycle; within a period profit is last.
    let cycle = &plan[at("profit").unwrap()];
    assert_eq!(cycle.direction, Direction::Forward);
    assert_eq!(cycle.metrics.last().map(String::as_str), Some("profit"));
    assert_eq!(plan.len(), 3);
}

#[test]
fn a_long_chain_of_metrics_does_not_overflow_the_stack() {
    let n = 100_000;
    let same = Reads {
        same: true,
        ..Reads::default()
    };
    let later = Reads {
        later: Some(1),
        ..Reads::default()
    };
    // Each metric reads the previous one in the same period and itself a period later.
    let graph: ReadGraph = (1..n)
        .map(|i| {
            let reads = BTreeMap::from([
                (format!("m{:06}", i - 1), same),
                (format!("m{i:06}"), later),
            ]);
            (format!("m{i:06}"), reads)
        })
        .collect();
    let plan = schedule(&graph).unwrap();
    assert_eq!(plan.len(), n);
    assert_eq!(plan[0], component(&["m000000"], Direction::Acyclic));
    assert_eq!(plan[1], component(&["m000001"], Direction::Backward));

    // One ring of them all, closed a period back: one forward component, in chain order within
    // a period. With the self-reads a period later too, the ring mixes directions.
    let earlier = Reads {
        earlier: Some(-1),
        ..Reads::default()
    };
    let mut ring: ReadGraph = (1..n)
        .map(|i| {
            let reads = BTreeMap::from([(format!("m{:06}", i - 1), same)]);
            (format!("m{i:06}"), reads)
        })
        .collect();
    ring.insert(
        "m000000".into(),
        BTreeMap::from([(format!("m{:06}", n - 1), earlier)]),
    );
    let plan = schedule(&ring).unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].direction, Direction::Forward);
    assert_eq!(plan[0].metrics[..2], ["m000000", "m000001"]);
    ring.get_mut("m000001")
        .unwrap()
        .insert("m000001".into(), later);
    assert_eq!(schedule(&ring).unwrap_err().kind, CycleKind::BothDirections);
}

fn stored(entries: &[(&str, Vec<Option<Decimal>>)]) -> HashMap<String, Vec<Option<Decimal>>> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn run(
    formulas: &[(&str, Option<&str>)],
    period_count: usize,
    stored: &HashMap<String, Vec<Option<Decimal>>>,
) -> Result<HashMap<String, Vec<Option<Decimal>>>, EvalError> {
    let metrics: Vec<MetricDef> = formulas
        .iter()
        .map(|(k, f)| MetricDef {
            key: (*k).to_owned(),
            formula: f.map(|f| parse(f).unwrap()),
        })
        .collect();
    evaluate(&ModelInput {
        period_count,
        metrics: &metrics,
        parameters: &HashMap::new(),
        stored,
    })
}

#[test]
fn backward_recursion_from_a_stored_terminal_value() {
    let model = [
        ("free_cash_flow", None),
        (
            "value_to_go",
            Some("free_cash_flow + value_to_go[1] * 0.97"),
        ),
    ];
    let fcf = vec![Some(d("10")), Some(d("20")), None, Some(d("40"))];
    let seeded = stored(&[
        ("free_cash_flow", fcf.clone()),
        ("value_to_go", vec![None, None, Some(d("100")), None]),
    ]);
    let out = run(&model, 4, &seeded).unwrap();
    // Period 3 reads past the timeline: null. Period 2 is the seed; 1 and 0 discount from it.
    assert_eq!(
        out["value_to_go"],
        vec![Some(d("123.49")), Some(d("117")), Some(d("100")), None]
    );
    // Without a seed the last period reads past the timeline, and the whole chain is null.
    let unseeded = stored(&[("free_cash_flow", fcf.clone())]);
    assert_eq!(
        run(&model, 4, &unseeded).unwrap()["value_to_go"],
        vec![None; 4]
    );
    // An INPUT metric no formula reads is still part of the plan: its stored values come out.
    let out = run(&[("free_cash_flow", None)], 4, &unseeded).unwrap();
    assert_eq!(out["free_cash_flow"], fcf);
}

#[test]
fn long_timelines_recurse_without_the_stack() {
    let n = 200_000;
    let seed_last = stored(&[("down", {
        let mut v = vec![None; n];
        v[n - 1] = Some(Decimal::ZERO);
        v
    })]);
    let mut seeds = seed_last.clone();
    seeds.insert("up".into(), vec![Some(Decimal::ZERO)]);
    let out = run(
        &[
            ("down", Some("down[1] + 1")),
            ("up", Some("up[-1] + 1")),
            ("both", Some("down + up")),
        ],
        n,
        &seeds,
    )
    .unwrap();
    let last = Decimal::from(n - 1);
    assert_eq!(out["down"][0], Some(last));
    assert_eq!(out["up"][n - 1], Some(last));
    assert!(out["both"].iter().all(|v| *v == Some(last)));
}

// ---------------------------------------------------------------------------------------------
// Properties over random models of up to four metrics.

const KEYS: [&str; 4] = ["m0", "m1", "m2", "m3"];

/// Offsets leaning one way (most cases) or either way, so that both verdicts are common.
fn offsets() -> impl Strategy<Value = std::ops::RangeInclusive<i32>> {
    prop_oneof![Just(-2..=0), Just(0..=2), Just(-2..=2), Just(-1..=1)]
}

fn formula(metrics: usize, range: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = Expr> {
    let key = (0..metrics).prop_map(|i| KEYS[i].to_owned());
    let leaf = prop_oneof![
        3 => (key.clone(), range.clone()).prop_map(|(key, offset)| Expr::Ref {
            key,
            offset,
            position: 0
        }),
        1 => (key, range, 1u32..=3).prop_map(|(key, offset, count)| Expr::Sum {
            key,
            offset,
            count,
            position: 0
        }),
        1 => (-20i64..20, 0u32..2).prop_map(|(m, s)| Expr::Number(Decimal::new(m, s))),
        1 => Just(Expr::Ref { key: "rate".into(), offset: 0, position: 0 }),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (
                prop_oneof![
                    Just(BinaryOp::Add),
                    Just(BinaryOp::Sub),
                    Just(BinaryOp::Mul),
                    Just(BinaryOp::Div)
                ],
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, l, r)| Expr::Binary {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r)
                }),
            prop::collection::vec(inner.clone(), 1..3).prop_map(Expr::Min),
            (inner.clone(), inner.clone(), inner.clone(), inner).prop_map(|(a, b, t, e)| {
                Expr::If {
                    cond: Box::new(Condition {
                        op: CompareOp::Gt,
                        lhs: a,
                        rhs: b,
                    }),
                    then: Box::new(t),
                    otherwise: Box::new(e),
                }
            }),
        ]
    })
}

/// A model: per metric, its formula (`None` for INPUT); the timeline's length; stored values.
#[derive(Debug, Clone)]
struct Model {
    formulas: Vec<Option<Expr>>,
    period_count: usize,
    stored: HashMap<String, Vec<Option<Decimal>>>,
}

fn model() -> impl Strategy<Value = Model> {
    (1usize..=4, offsets(), 0usize..=6).prop_flat_map(|(metrics, range, period_count)| {
        let value = prop_oneof![
            2 => Just(None),
            1 => (-50i64..50, 0u32..2).prop_map(|(m, s)| Some(Decimal::new(m, s))),
        ];
        (
            prop::collection::vec(
                prop::option::weighted(0.8, formula(metrics, range.clone())),
                metrics,
            ),
            prop::collection::vec(prop::collection::vec(value, period_count), metrics),
        )
            .prop_map(move |(formulas, values)| Model {
                formulas,
                period_count,
                stored: KEYS.iter().map(|k| (*k).to_owned()).zip(values).collect(),
            })
    })
}

impl Model {
    fn defs(&self) -> Vec<MetricDef> {
        self.formulas
            .iter()
            .enumerate()
            .map(|(i, f)| MetricDef {
                key: KEYS[i].to_owned(),
                formula: f.clone(),
            })
            .collect()
    }

    /// Every `(from, to, offset)` edge, each period of a `sum` one edge: written from the
    /// expression tree, independently of the analysis under test.
    fn edges(&self) -> BTreeSet<(usize, usize, i32)> {
        fn walk(e: &Expr, from: usize, out: &mut BTreeSet<(usize, usize, i32)>) {
            let index = |key: &str| KEYS.iter().position(|k| *k == key);
            match e {
                Expr::Number(_) => {}
                Expr::Ref { key, offset, .. } => {
                    if let Some(to) = index(key) {
                        out.insert((from, to, *offset));
                    }
                }
                Expr::Sum {
                    key, offset, count, ..
                } => {
                    if let Some(to) = index(key) {
                        for back in 0..*count {
                            out.insert((from, to, offset - i32::try_from(back).unwrap()));
                        }
                    }
                }
                Expr::Neg(a) | Expr::Abs(a) => walk(a, from, out),
                Expr::Binary { lhs, rhs, .. } => {
                    walk(lhs, from, out);
                    walk(rhs, from, out);
                }
                Expr::Min(args) | Expr::Max(args) => args.iter().for_each(|a| walk(a, from, out)),
                Expr::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    for part in [&cond.lhs, &cond.rhs, then, otherwise] {
                        walk(part, from, out);
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        for (from, f) in self.formulas.iter().enumerate() {
            if let Some(f) = f {
                walk(f, from, &mut out);
            }
        }
        out
    }
}

/// The data model's rule, literally: enumerate every simple cycle (every choice of offset on
/// every step); each must be one-signed with a non-zero offset, and the cycles through any one
/// metric must all run in the same direction.
fn brute_force_allows(metrics: usize, edges: &BTreeSet<(usize, usize, i32)>) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Way {
        Forward,
        Backward,
    }
    let mut ways: Vec<Vec<Way>> = vec![Vec::new(); metrics];
    let mut ok = true;
    // Depth-first over paths of distinct metrics from `start`, carrying the offsets so far.
    fn extend(
        start: usize,
        path: &mut Vec<usize>,
        offsets: &mut Vec<i32>,
        edges: &BTreeSet<(usize, usize, i32)>,
        on_cycle: &mut dyn FnMut(&[usize], &[i32]),
    ) {
        let last = *path.last().unwrap();
        for &(_, to, offset) in edges.iter().filter(|e| e.0 == last) {
            offsets.push(offset);
            if to == start {
                on_cycle(path, offsets);
            } else if !path.contains(&to) {
                path.push(to);
                extend(start, path, offsets, edges, on_cycle);
                path.pop();
            }
            offsets.pop();
        }
    }
    for start in 0..metrics {
        let mut on_cycle = |path: &[usize], offsets: &[i32]| {
            let way = if offsets.iter().all(|o| *o <= 0) && offsets.iter().any(|o| *o < 0) {
                Way::Forward
            } else if offsets.iter().all(|o| *o >= 0) && offsets.iter().any(|o| *o > 0) {
                Way::Backward
            } else {
                ok = false;
                return;
            };
            for m in path {
                ways[*m].push(way);
            }
        };
        extend(
            start,
            &mut vec![start],
            &mut Vec::new(),
            edges,
            &mut on_cycle,
        );
    }
    ok && ways.iter().all(|w| w.windows(2).all(|p| p[0] == p[1]))
}

/// The naive evaluator: each cell demanded recursively from the formulas, memoised per
/// (metric, period). A cell demanded while it is being computed would be a cycle the rule let
/// through: it fails the test.
struct Naive<'a> {
    model: &'a Model,
    rate: Decimal,
    memo: HashMap<(usize, i64), Option<Option<Decimal>>>,
}

impl Naive<'_> {
    fn cell(&mut self, m: usize, t: i64) -> Option<Decimal> {
        let Ok(p) = usize::try_from(t) else {
            return None;
        };
        if p >= self.model.period_count {
            return None;
        }
        match self.memo.get(&(m, t)) {
            Some(Some(v)) => return *v,
            Some(None) => panic!("cell ({}, {t}) reads itself", KEYS[m]),
            None => {}
        }
        self.memo.insert((m, t), None);
        let stored = self.model.stored[KEYS[m]][p];
        let value = match (stored, &self.model.formulas[m]) {
            (Some(v), _) => Some(v),
            (None, Some(f)) => self.eval(f, t),
            (None, None) => None,
        };
        self.memo.insert((m, t), Some(value));
        value
    }

    fn read(&mut self, key: &str, t: i64) -> Option<Decimal> {
        match KEYS.iter().position(|k| *k == key) {
            Some(m) => self.cell(m, t),
            None => Some(self.rate),
        }
    }

    fn eval(&mut self, e: &Expr, t: i64) -> Option<Decimal> {
        match e {
            Expr::Number(n) => Some(*n),
            Expr::Ref { key, offset, .. } => self.read(key, t + i64::from(*offset)),
            Expr::Sum {
                key, offset, count, ..
            } => {
                let mut total: Option<Decimal> = None;
                for back in 0..i64::from(*count) {
                    let v = self.read(key, t + i64::from(*offset) - back)?;
                    total = Some(match total {
                        None => v,
                        Some(s) => s.checked_add(v)?,
                    });
                }
                total
            }
            Expr::Neg(a) => self.eval(a, t).map(|v| -v),
            Expr::Abs(a) => self.eval(a, t).map(|v| v.abs()),
            Expr::Binary { op, lhs, rhs } => {
                let (a, b) = (self.eval(lhs, t)?, self.eval(rhs, t)?);
                match op {
                    BinaryOp::Add => a.checked_add(b),
                    BinaryOp::Sub => a.checked_sub(b),
                    BinaryOp::Mul => a.checked_mul(b),
                    BinaryOp::Div => a.checked_div(b),
                }
            }
            Expr::Min(args) | Expr::Max(args) => {
                let pick: fn(Decimal, Decimal) -> Decimal = if matches!(e, Expr::Min(_)) {
                    Decimal::min
                } else {
                    Decimal::max
                };
                let mut result: Option<Decimal> = None;
                for a in args {
                    let v = self.eval(a, t)?;
                    result = Some(result.map_or(v, |r| pick(r, v)));
                }
                result
            }
            Expr::If {
                cond,
                then,
                otherwise,
            } => {
                let holds = cond
                    .op
                    .holds(self.eval(&cond.lhs, t)?, self.eval(&cond.rhs, t)?);
                self.eval(if holds { then } else { otherwise }, t)
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// `schedule` refuses exactly the models the brute-force judge refuses; a refused cycle is
    /// named by a real closed walk of the kind it claims; an allowed model evaluates exactly as
    /// the naive evaluator does, and no cell of it reads itself.
    #[test]
    fn the_rule_and_the_evaluation_agree_with_brute_force(model in model()) {
        let defs = model.defs();
        let edges = model.edges();
        let allowed = brute_force_allows(defs.len(), &edges);
        let rate = d("0.5");
        let parameters: HashMap<String, Decimal> = [("rate".to_owned(), rate)].into();
        let result = evaluate(&ModelInput {
            period_count: model.period_count,
            metrics: &defs,
            parameters: &parameters,
            stored: &model.stored,
        });
        let shown: Vec<String> =
            defs.iter().map(|m| format!("{} = {:?}", m.key, m.formula.as_ref().map(ToString::to_string))).collect();
        match result {
            Ok(values) => {
                prop_assert!(allowed, "accepted a model the rule refuses: {:?}", shown);
                let mut naive = Naive { model: &model, rate, memo: HashMap::new() };
                for (m, key) in KEYS.iter().enumerate().take(defs.len()) {
                    let expected: Vec<Option<Decimal>> = (0..model.period_count)
                        .map(|t| naive.cell(m, i64::try_from(t).unwrap()))
                        .collect();
                    prop_assert_eq!(&values[*key], &expected, "{} in {:?}", key, shown);
                }
            }
            Err(EvalError::Cycle(cycle)) => {
                prop_assert!(!allowed, "refused a model the rule allows: {} in {:?}", cycle, shown);
                // The walk is made of real edges and closes where it starts.
                let index = |k: &str| KEYS.iter().position(|x| *x == k).unwrap();
                let mut at = index(&cycle.start);
                for (key, offset) in &cycle.steps {
                    let to = index(key);
                    prop_assert!(edges.contains(&(at, to, *offset)), "{} in {:?}", cycle, shown);
                    at = to;
                }
                prop_assert_eq!(at, index(&cycle.start));
                let offsets: Vec<i32> = cycle.steps.iter().map(|s| s.1).collect();
                match cycle.kind {
                    CycleKind::SamePeriod => prop_assert!(offsets.iter().all(|o| *o == 0)),
                    CycleKind::BothDirections => prop_assert!(
                        offsets.iter().any(|o| *o < 0) && offsets.iter().any(|o| *o > 0)
                    ),
                }
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }
}
