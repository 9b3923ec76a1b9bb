//! The size limits of a saved formula, and that a hostile one is refused before it costs work.

use std::time::{Duration, Instant};

use crate::domain::modelling::formula::{
    FormulaLimits, eval_weight, node_count, parse, parse_with,
    parser::{ParseWork, parse_counted},
};

/// The server's defaults.
const DEFAULTS: FormulaLimits = FormulaLimits {
    max_length: 2_000,
    max_nodes: 500,
    max_args: 64,
};

/// `min(sum(p,300),sum(p,300),…)` with `n` arguments: the attack of the hostile-input issue.
fn wide_min(n: usize) -> String {
    format!("min({})", vec!["sum(p,300)"; n].join(","))
}

#[test]
fn the_length_is_refused_before_the_lexer_runs() {
    let src = wide_min(90_000);
    assert!(src.len() < 1024 * 1024, "the attack fits in a 1 MiB body");
    let started = Instant::now();
    let (result, work) = parse_counted(&src, &DEFAULTS);
    let elapsed = started.elapsed();
    let err = result.expect_err("refused");
    assert!(err.message.contains("too long"), "{}", err.message);
    assert!(err.message.contains("at most 2000"), "{}", err.message);
    assert_eq!(work, ParseWork::default(), "no token, no node");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[test]
fn the_length_counts_characters_not_bytes() {
    let limits = FormulaLimits {
        max_length: 5,
        ..DEFAULTS
    };
    // Five characters, ten bytes of non-breaking spaces around them.
    assert!(parse_with("\u{a0}a+b\u{a0}", &limits).is_ok());
    assert!(parse_with("a + b ", &limits).is_err());
    let padded = |n: usize| format!("{}1", " ".repeat(n - 1));
    let err = parse_with(&padded(2_001), &DEFAULTS).expect_err("2,001 characters");
    assert_eq!(err.position, 2_000);
    assert!(parse_with(&padded(2_000), &DEFAULTS).is_ok());
}

#[test]
fn the_parser_stops_at_the_argument_cap_however_long_the_call() {
    // Without the length cap, 90,000 arguments are still refused after the 65th starts.
    let limits = FormulaLimits {
        max_length: usize::MAX,
        ..DEFAULTS
    };
    let (result, work) = parse_counted(&wide_min(90_000), &limits);
    let err = result.expect_err("refused");
    assert!(
        err.message.contains("too many arguments to `min`") && err.message.contains("at most 64"),
        "{}",
        err.message
    );
    // `min(` is two tokens and one node; each `sum(p,300),` is seven tokens and one node.
    assert_eq!(work.nodes, 1 + 64);
    assert_eq!(work.tokens_read, 2 + 64 * 7);
    assert_eq!(err.position, "min(".len() + 64 * "sum(p,300),".len());
}

#[test]
fn the_parser_stops_at_the_node_cap() {
    let limits = FormulaLimits {
        max_length: usize::MAX,
        ..DEFAULTS
    };
    // `min(a,…) + min(a,…) + …`: wide and shallow, 100 calls of 60 keys, refused when the
    // 501st node is met (the 7th key of the 9th call).
    let call = format!("min({})", vec!["a"; 60].join(","));
    let src = vec![call.as_str(); 100].join("+");
    let (result, work) = parse_counted(&src, &limits);
    let err = result.expect_err("refused");
    assert!(err.message.contains("at most 500"), "{}", err.message);
    assert_eq!(work.nodes, 501);
    assert!(work.tokens_read < 1_200, "{work:?}");

    // Exactly at the cap is fine, and the parser counts as `node_count` does.
    let ok = format!("if(a > 1, -abs(b), max({}))", vec!["c[-1]"; 40].join(" * "));
    let expr = parse_with(&ok, &limits).expect("parses");
    let nodes = node_count(&expr);
    let exact = FormulaLimits {
        max_nodes: nodes,
        ..limits
    };
    assert!(parse_with(&ok, &exact).is_ok());
    let under = FormulaLimits {
        max_nodes: nodes - 1,
        ..limits
    };
    assert!(parse_with(&ok, &under).is_err());
}

#[test]
fn the_argument_cap_is_inclusive() {
    let args = |n: usize| format!("max({})", vec!["x"; n].join(", "));
    assert!(parse_with(&args(64), &DEFAULTS).is_ok());
    let err = parse_with(&args(65), &DEFAULTS).expect_err("65 arguments");
    assert_eq!(err.position, args(65).rfind('x').expect("last argument"));
}

#[test]
fn stored_formulas_parse_without_limits() {
    assert!(parse(&wide_min(1_000)).is_ok());
}

#[test]
fn a_sum_weighs_its_periods() {
    let weight = |src: &str| eval_weight(&parse(src).expect("parses"));
    assert_eq!(weight("a"), 1);
    assert_eq!(weight("a + b * 2"), 5);
    assert_eq!(weight("sum(a, 12) / 12"), 14);
    assert_eq!(weight("if(a > 0, a, -a)"), 6);
    assert_eq!(node_count(&parse("sum(a, 12) / 12").expect("parses")), 3);
}
