//! Property tests: printing and re-parsing, robustness of the parser, agreement of evaluation
//! with a reference evaluator, and the laziness of `if`.

use std::collections::HashMap;

use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::domain::modelling::formula::{
    BinaryOp, CompareOp, Condition, Expr, MetricDef, ModelInput, RESERVED_WORDS, evaluate, parse,
};

fn key_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,6}".prop_filter("reserved", |k| !RESERVED_WORDS.contains(&k.as_str()))
}

/// A non-negative literal, as the parser produces them.
fn literal() -> impl Strategy<Value = Decimal> {
    (0i64..1_000_000_000, 0u32..8).prop_map(|(m, scale)| Decimal::new(m, scale))
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop_oneof![
        Just(BinaryOp::Add),
        Just(BinaryOp::Sub),
        Just(BinaryOp::Mul),
        Just(BinaryOp::Div)
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Gt),
        Just(CompareOp::Lt),
        Just(CompareOp::Ge),
        Just(CompareOp::Le),
        Just(CompareOp::Eq),
        Just(CompareOp::Ne)
    ]
}

/// Any expression the parser can produce.
fn any_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        literal().prop_map(Expr::Number),
        (key_name(), -30i32..30).prop_map(|(key, offset)| Expr::Ref {
            key,
            offset,
            position: 0
        }),
        (key_name(), -30i32..30, 1u32..20).prop_map(|(key, offset, count)| Expr::Sum {
            key,
            offset,
            count,
            position: 0
        }),
    ];
    leaf.prop_recursive(5, 64, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
            inner.clone().prop_map(|e| Expr::Abs(Box::new(e))),
            (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r)
            }),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::Min),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::Max),
            (
                compare_op(),
                inner.clone(),
                inner.clone(),
                inner.clone(),
                inner
            )
                .prop_map(|(op, lhs, rhs, then, otherwise)| Expr::If {
                    cond: Box::new(Condition { op, lhs, rhs }),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise)
                }),
        ]
    })
}

/// An exact value for the reference evaluator: `mantissa / 10^scale`, in `i128` so that it
/// can tell when a result goes beyond what `Decimal` represents exactly.
#[derive(Debug, Clone, Copy)]
struct Exact {
    mantissa: i128,
    scale: u32,
}

/// What the reference evaluator concludes.
#[derive(Debug, Clone, Copy)]
enum Reference {
    /// A value that `Decimal` represents exactly, as do all the intermediate values.
    Value(Exact),
    /// A missing operand somewhere: the engine must give `None`.
    Missing,
    /// Beyond `Decimal`'s 96-bit mantissa or 28 decimal places: the engine may round or give
    /// `None`; only the absence of a panic is checked.
    Unrepresentable,
}

impl Exact {
    fn from_decimal(d: Decimal) -> Self {
        Self {
            mantissa: d.mantissa(),
            scale: d.scale(),
        }
        .normalized()
    }

    fn normalized(mut self) -> Self {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    fn fits(self) -> bool {
        self.scale <= 28 && self.mantissa.unsigned_abs() < (1u128 << 96)
    }

    fn at_scale(self, scale: u32) -> Option<i128> {
        self.mantissa
            .checked_mul(10i128.checked_pow(scale - self.scale)?)
    }

    fn to_decimal(self) -> Decimal {
        Decimal::from_i128_with_scale(self.mantissa, self.scale)
    }
}

fn combine(op: BinaryOp, a: Exact, b: Exact) -> Option<Exact> {
    let result = match op {
        BinaryOp::Mul => Exact {
            mantissa: a.mantissa.checked_mul(b.mantissa)?,
            scale: a.scale + b.scale,
        },
        BinaryOp::Add | BinaryOp::Sub => {
            let scale = a.scale.max(b.scale);
            let (x, y) = (a.at_scale(scale)?, b.at_scale(scale)?);
            let mantissa = if op == BinaryOp::Add {
                x.checked_add(y)?
            } else {
                x.checked_sub(y)?
            };
            Exact { mantissa, scale }
        }
        BinaryOp::Div => return None,
    };
    Some(result.normalized()).filter(|e| e.fits())
}

/// The straightforward reference: recursion over the tree, `x` read from `xs` at `t + offset`.
fn reference(expr: &Expr, xs: &[Option<Decimal>], t: usize) -> Reference {
    match expr {
        Expr::Number(n) => Reference::Value(Exact::from_decimal(*n)),
        Expr::Ref { offset, .. } => {
            let p = isize::try_from(*offset)
                .ok()
                .and_then(|offset| t.checked_add_signed(offset));
            match p.and_then(|p| xs.get(p)) {
                Some(Some(v)) => Reference::Value(Exact::from_decimal(*v)),
                _ => Reference::Missing,
            }
        }
        Expr::Neg(inner) => match reference(inner, xs, t) {
            Reference::Value(e) => Reference::Value(Exact {
                mantissa: -e.mantissa,
                scale: e.scale,
            }),
            other => other,
        },
        Expr::Binary { op, lhs, rhs } => match (reference(lhs, xs, t), reference(rhs, xs, t)) {
            (Reference::Missing, _) | (_, Reference::Missing) => Reference::Missing,
            (Reference::Value(a), Reference::Value(b)) => match combine(*op, a, b) {
                Some(v) => Reference::Value(v),
                None => Reference::Unrepresentable,
            },
            _ => Reference::Unrepresentable,
        },
        other => panic!("the reference evaluator does not handle {other}"),
    }
}

/// Arithmetic over `+ - *`, unary minus, literals and `x` at small offsets.
fn arithmetic() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (0i64..10_000_000, 0u32..5).prop_map(|(m, s)| Expr::Number(Decimal::new(m, s))),
        (-2i32..=2).prop_map(|offset| Expr::Ref {
            key: "x".into(),
            offset,
            position: 0
        }),
    ];
    leaf.prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
            (
                prop_oneof![
                    Just(BinaryOp::Add),
                    Just(BinaryOp::Sub),
                    Just(BinaryOp::Mul)
                ],
                inner.clone(),
                inner
            )
                .prop_map(|(op, l, r)| Expr::Binary {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r)
                }),
        ]
    })
}

/// Values of the input `x`, some of them missing, some very large.
fn x_series() -> impl Strategy<Value = Vec<Option<Decimal>>> {
    let value = prop_oneof![
        4 => (-10_000_000i64..10_000_000, 0u32..6).prop_map(|(m, s)| Some(Decimal::new(m, s))),
        1 => Just(None),
        1 => any::<i64>().prop_map(|m| Some(Decimal::new(m, 2))),
    ];
    prop::collection::vec(value, 1..6)
}

/// Evaluate `formula` as the metric `y` over the input metric `x`.
fn run(formula: Expr, xs: &[Option<Decimal>]) -> Vec<Option<Decimal>> {
    let metrics = [
        MetricDef {
            key: "y".into(),
            formula: Some(formula),
        },
        MetricDef {
            key: "x".into(),
            formula: None,
        },
    ];
    let stored: HashMap<String, Vec<Option<Decimal>>> = [("x".to_owned(), xs.to_vec())].into();
    let mut out = evaluate(&ModelInput {
        period_count: xs.len(),
        metrics: &metrics,
        parameters: &HashMap::new(),
        stored: &stored,
    })
    .unwrap();
    out.remove("y").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) Printing an expression and parsing it back gives the same expression.
    #[test]
    fn display_then_parse_round_trips(expr in any_expr()) {
        let source = expr.to_string();
        let parsed = parse(&source);
        prop_assert_eq!(parsed.as_ref(), Ok(&expr), "source: {}", source);
        prop_assert_eq!(parsed.map(|e| e.to_string()), Ok(source));
    }

    /// (b) The parser returns, Ok or Err, on any string; an error points inside the formula.
    #[test]
    fn parser_never_panics(src in any::<String>()) {
        if let Err(e) = parse(&src) {
            prop_assert!(e.position <= src.chars().count());
            prop_assert!(!e.message.is_empty());
        }
    }

    /// (b) The same with strings made of the formula's own characters, which go deeper.
    #[test]
    fn parser_never_panics_on_formula_like_text(
        src in "[a-z0-9_ +*/().,<>=!\\[\\]-]{0,60}|(min|max|abs|sum|if|\\(|\\)|,|x|\\[|\\]|-|1|>| ){0,40}"
    ) {
        match parse(&src) {
            Ok(expr) => prop_assert_eq!(parse(&expr.to_string()), Ok(expr)),
            Err(e) => prop_assert!(e.position <= src.chars().count()),
        }
    }

    /// (c) Evaluation of `+ - *` agrees with the reference evaluator wherever the exact result
    /// is representable, propagates missing values, and never panics.
    #[test]
    fn arithmetic_agrees_with_reference(expr in arithmetic(), xs in x_series()) {
        let source = expr.to_string();
        let parsed = parse(&source).unwrap();
        let values = run(parsed, &xs);
        prop_assert_eq!(values.len(), xs.len());
        for (t, value) in values.iter().enumerate() {
            match reference(&expr, &xs, t) {
                Reference::Value(exact) => {
                    prop_assert_eq!(*value, Some(exact.to_decimal()), "{} at {}", source, t)
                }
                Reference::Missing => prop_assert_eq!(*value, None, "{} at {}", source, t),
                Reference::Unrepresentable => {}
            }
        }
    }

    /// (c) Any expression, over any values, evaluates without panicking or failing.
    #[test]
    fn evaluation_never_fails(expr in any_expr(), xs in x_series()) {
        // Every key becomes `x`, and every offset is kept: many reach off the timeline.
        fn rename(e: &mut Expr) {
            match e {
                Expr::Number(_) => {}
                Expr::Ref { key, .. } | Expr::Sum { key, .. } => *key = "x".into(),
                Expr::Neg(a) | Expr::Abs(a) => rename(a),
                Expr::Binary { lhs, rhs, .. } => { rename(lhs); rename(rhs); }
                Expr::Min(args) | Expr::Max(args) => args.iter_mut().for_each(rename),
                Expr::If { cond, then, otherwise } => {
                    rename(&mut cond.lhs);
                    rename(&mut cond.rhs);
                    rename(then);
                    rename(otherwise);
                }
            }
        }
        let mut expr = expr;
        rename(&mut expr);
        prop_assert_eq!(run(expr, &xs).len(), xs.len());
    }

    /// (d) A missing value in the branch not taken never makes an `if` missing.
    #[test]
    fn if_ignores_the_branch_not_taken(
        a in (-1000i64..1000, 0u32..3).prop_map(|(m, s)| Decimal::new(m, s)),
        b in (-1000i64..1000, 0u32..3).prop_map(|(m, s)| Decimal::new(m, s)),
        v in (-1_000_000i64..1_000_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
        op in compare_op(),
        missing in prop_oneof![Just("missing"), Just("(v / 0)"), Just("v[-1]"), Just("v[1]"), Just("min(v, missing)")],
    ) {
        let holds = op.holds(a, b);
        let (then, otherwise) = if holds { ("v", missing) } else { (missing, "v") };
        let formula = format!("if(p {} q, {then}, {otherwise})", op.symbol());
        let metrics = vec![
            MetricDef { key: "y".into(), formula: Some(parse(&formula).unwrap()) },
            MetricDef { key: "p".into(), formula: None },
            MetricDef { key: "q".into(), formula: None },
            MetricDef { key: "v".into(), formula: None },
            MetricDef { key: "missing".into(), formula: None },
        ];
        let stored: HashMap<String, Vec<Option<Decimal>>> = [
            ("p".to_owned(), vec![Some(a)]),
            ("q".to_owned(), vec![Some(b)]),
            ("v".to_owned(), vec![Some(v)]),
        ].into();
        let out = evaluate(&ModelInput {
            period_count: 1,
            metrics: &metrics,
            parameters: &HashMap::new(),
            stored: &stored,
        }).unwrap();
        prop_assert_eq!(&out["y"], &vec![Some(v)], "{}", formula);
    }
}
