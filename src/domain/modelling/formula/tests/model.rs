//! A small model computed by hand, exercising every rule of evaluation.

use std::{collections::HashMap, str::FromStr};

use rust_decimal::Decimal;

use crate::domain::modelling::formula::{
    Cycle, CycleKind, EvalError, MetricDef, ModelInput, evaluate, parse, round_output,
};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A series written as `["100", "", "0.5"]`, where `""` is a missing value.
fn series(values: &[&str]) -> Vec<Option<Decimal>> {
    values
        .iter()
        .map(|v| if v.is_empty() { None } else { Some(d(v)) })
        .collect()
}

fn derived(key: &str, formula: &str) -> MetricDef {
    MetricDef {
        key: key.into(),
        formula: Some(parse(formula).unwrap()),
    }
}

fn input(key: &str) -> MetricDef {
    MetricDef {
        key: key.into(),
        formula: None,
    }
}

#[test]
fn hand_computed_model() {
    // Derived metrics first and inputs last: the order of the list does not matter.
    let metrics = vec![
        derived("gross_margin", "(revenue - cogs) / revenue"),
        derived("revenue_growth", "revenue / revenue[-1] - 1"),
        derived("revenue_3p", "sum(revenue, 3)"),
        derived("bonus", "if(revenue > 100, revenue * 0.1, cogs)"),
        derived("cost_ratio", "if(cogs != 0, 1 / cogs, -1)"),
        derived(
            "spread",
            "max(revenue, cogs) - min(revenue, cogs, 80) + abs(cogs - revenue)",
        ),
        derived("next_cogs", "cogs[1]"),
        derived("third", "2 / 3"),
        derived("revenue", "revenue[-1] * (1 + growth_rate)"),
        input("cogs"),
        input("headcount"),
    ];
    let parameters: HashMap<String, Decimal> = [("growth_rate".to_owned(), d("0.1"))].into();
    let stored: HashMap<String, Vec<Option<Decimal>>> = [
        // The seed at period 0, an override of the formula at period 3, another at period 5.
        (
            "revenue".to_owned(),
            series(&["100", "", "", "0", "", "50"]),
        ),
        // Period 2 is missing.
        (
            "cogs".to_owned(),
            series(&["60", "66", "", "10", "0", "20"]),
        ),
        // A stored value on a derived metric wins even where its formula would give `None`.
        ("gross_margin".to_owned(), series(&["", "", "", "0.25"])),
    ]
    .into();
    let out = evaluate(&ModelInput {
        period_count: 6,
        metrics: &metrics,
        parameters: &parameters,
        stored: &stored,
    })
    .unwrap();

    let expect = |key: &str, values: &[&str]| {
        assert_eq!(out[key], series(values), "{key}");
    };
    // 100 (seed), 100 × 1.1, 110 × 1.1, 0 (stored; the formula would give 133.1), 0 × 1.1, 50.
    expect("revenue", &["100", "110", "121", "0", "0", "50"]);
    expect("cogs", &["60", "66", "", "10", "0", "20"]);
    // Period 2: cogs missing. Period 3: stored. Period 4: 0 / 0.
    expect("gross_margin", &["0.4", "0.4", "", "0.25", "", "0.6"]);
    // Period 0: revenue[-1] is off the timeline. Periods 4 and 5: division by zero.
    expect("revenue_growth", &["", "0.1", "0.1", "-1", "", ""]);
    // The first two periods reach before the timeline.
    expect("revenue_3p", &["", "", "331", "231", "121", "50"]);
    // Period 2: cogs (the branch not taken) is missing, which does not matter.
    expect("bonus", &["60", "11", "12.1", "10", "0", "20"]);
    // Period 2: a missing condition. Period 4: `1 / cogs` would divide by zero but is not taken.
    let cost_ratio = &out["cost_ratio"];
    assert_eq!(cost_ratio[0].map(round_output), Some(d("0.016667")));
    assert_eq!(cost_ratio[1].map(round_output), Some(d("0.015152")));
    assert_eq!(cost_ratio[2], None);
    assert_eq!(cost_ratio[3], Some(d("0.1")));
    assert_eq!(cost_ratio[4], Some(d("-1")));
    assert_eq!(cost_ratio[5], Some(d("0.05")));
    // max − min + abs, with the missing cogs of period 2 propagating through every function.
    expect("spread", &["80", "88", "", "20", "0", "60"]);
    // A forward offset: period 1 reads the missing period 2, period 5 reads past the end.
    expect("next_cogs", &["66", "", "10", "0", "20", ""]);
    // Full precision inside, rounded half-even on output.
    let third = out["third"][0].unwrap();
    assert_eq!(third, d("0.6666666666666666666666666667"));
    assert_eq!(round_output(third).to_string(), "0.666667");
    // An input metric without stored values is missing everywhere.
    expect("headcount", &["", "", "", "", "", ""]);
    assert_eq!(out.len(), metrics.len());
}

#[test]
fn rounding_is_half_even_to_six_places() {
    let cases = [
        ("0.0000005", "0.000000"),
        ("0.0000015", "0.000002"),
        ("0.0000025", "0.000002"),
        ("0.0000035", "0.000004"),
        ("-0.0000015", "-0.000002"),
        ("0.00000051", "0.000001"),
        ("2", "2.000000"),
        ("1234.5", "1234.500000"),
        ("0.6666666666666666666666666667", "0.666667"),
        ("-0.0000001", "0.000000"),
    ];
    for (value, rounded) in cases {
        assert_eq!(round_output(d(value)).to_string(), rounded, "{value}");
    }
    assert_eq!(round_output(-Decimal::ZERO).to_string(), "0.000000");
    // Too large to carry six places: the value is kept as it is.
    let big = Decimal::MAX;
    assert_eq!(round_output(big), big);
}

#[test]
fn overflow_gives_none() {
    let metrics = vec![
        derived("big", "79228162514264337593543950335 * 2"),
        derived("fine", "79228162514264337593543950335 - 1"),
    ];
    let empty = HashMap::new();
    let out = evaluate(&ModelInput {
        period_count: 1,
        metrics: &metrics,
        parameters: &HashMap::new(),
        stored: &empty,
    })
    .unwrap();
    assert_eq!(out["big"], vec![None]);
    assert_eq!(out["fine"], vec![Some(Decimal::MAX - Decimal::ONE)]);
}

#[test]
fn chains_across_metrics_and_periods() {
    // units is recursive, price is input, sales depends on both and on its own past.
    let metrics = vec![
        derived("cumulative", "cumulative[-1] + sales"),
        derived("sales", "units * price"),
        derived("units", "units[-1] + 10"),
        input("price"),
    ];
    let stored: HashMap<String, Vec<Option<Decimal>>> = [
        ("units".to_owned(), series(&["5"])),
        ("price".to_owned(), series(&["2", "2", "3", "3"])),
        ("cumulative".to_owned(), series(&["0"])),
    ]
    .into();
    let out = evaluate(&ModelInput {
        period_count: 4,
        metrics: &metrics,
        parameters: &HashMap::new(),
        stored: &stored,
    })
    .unwrap();
    assert_eq!(out["units"], series(&["5", "15", "25", "35"]));
    assert_eq!(out["sales"], series(&["10", "30", "75", "105"]));
    assert_eq!(out["cumulative"], series(&["0", "30", "105", "210"]));
}

#[test]
fn empty_timeline() {
    let metrics = vec![derived("a", "1"), input("b")];
    let out = evaluate(&ModelInput {
        period_count: 0,
        metrics: &metrics,
        parameters: &HashMap::new(),
        stored: &HashMap::new(),
    })
    .unwrap();
    assert_eq!(out["a"], vec![]);
    assert_eq!(out["b"], vec![]);
}

#[test]
fn models_validation_should_have_refused() {
    let run = |metrics: Vec<MetricDef>| {
        evaluate(&ModelInput {
            period_count: 3,
            metrics: &metrics,
            parameters: &HashMap::new(),
            stored: &HashMap::new(),
        })
    };
    let cycle = |kind, start: &str, steps: &[(&str, i32)]| {
        Err(EvalError::Cycle(Cycle {
            kind,
            start: start.into(),
            steps: steps.iter().map(|(k, o)| ((*k).to_owned(), *o)).collect(),
        }))
    };
    // `c[-1]` in a cycle whose other steps read the same period would be fine; `a` reading `c`
    // in the same period closes it within one period.
    assert_eq!(
        run(vec![
            derived("a", "b + 1"),
            derived("b", "c"),
            derived("c", "a")
        ]),
        cycle(CycleKind::SamePeriod, "a", &[("b", 0), ("c", 0), ("a", 0)])
    );
    assert_eq!(
        run(vec![derived("a", "a[-1] + a")]),
        cycle(CycleKind::SamePeriod, "a", &[("a", 0)])
    );
    assert_eq!(
        run(vec![derived("a", "sum(a, 2)")]),
        cycle(CycleKind::SamePeriod, "a", &[("a", 0)])
    );
    assert_eq!(
        run(vec![derived("a", "a[-1] + a[2]")]),
        cycle(CycleKind::BothDirections, "a", &[("a", 2), ("a", -1)])
    );
    assert_eq!(
        run(vec![derived("a", "nope * 2")]),
        Err(EvalError::UnknownKey {
            metric: "a".into(),
            key: "nope".into()
        })
    );
    assert_eq!(
        run(vec![input("a"), derived("a", "1")]),
        Err(EvalError::DuplicateMetric("a".into()))
    );
    let message = run(vec![derived("a", "b"), derived("b", "a")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "the formulas depend on each other in a cycle within one period: a → b → a"
    );
}
