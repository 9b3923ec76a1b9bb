//! The analysis of saved formulas: references, dependencies, cycles and their messages.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::domain::modelling::formula::{
    Reads, Reference, metric_dependencies, metric_reads, parse, references, topological_order,
    validate,
};

fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
    edges
        .iter()
        .map(|(k, deps)| {
            (
                (*k).to_owned(),
                deps.iter().map(|d| (*d).to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn references_list_every_key_and_offset() {
    let expr =
        parse("sum(revenue, 3) / revenue[-1] + rate * if(cogs[1] > 0, cogs, revenue[-5])").unwrap();
    assert_eq!(
        references(&expr),
        vec![
            Reference {
                key: "revenue".into(),
                offsets: vec![-5, -2, -1, 0],
                position: 4
            },
            Reference {
                key: "rate".into(),
                offsets: vec![0],
                position: 32
            },
            Reference {
                key: "cogs".into(),
                offsets: vec![0, 1],
                position: 42
            },
        ]
    );
    assert_eq!(references(&parse("1 + 2").unwrap()), vec![]);
    let offset_sum = references(&parse("sum(x[2], 2)").unwrap());
    assert_eq!(offset_sum[0].offsets, vec![1, 2]);
}

#[test]
fn reads_keep_the_nearest_offsets_either_way_and_the_same_period() {
    let metrics = ["x", "y", "z"];
    let expr = parse("x[-3] + sum(x[2], 2) + sum(y[1], 3) + z[-1] + z[-4] + rate").unwrap();
    let reads = metric_reads(&expr, "own", &metrics[..]);
    let r = |earlier, same, later| Reads {
        earlier,
        same,
        later,
    };
    assert_eq!(reads["x"], r(Some(-3), false, Some(1)));
    // `sum(y[1], 3)` reads y at 1, 0 and -1.
    assert_eq!(reads["y"], r(Some(-1), true, Some(1)));
    assert_eq!(reads["z"], r(Some(-1), false, None));
    assert_eq!(reads.len(), 3, "parameters are not metrics: {reads:?}");
    // The metric itself is included even when the caller's key set does not have it.
    let own = metric_reads(&parse("sum(own, 3)").unwrap(), "own", &metrics[..]);
    assert_eq!(own["own"], r(Some(-1), true, None));
    assert_eq!(own["own"].nearest(), 0);
    assert_eq!(r(Some(-2), false, Some(3)).nearest(), -2);
    assert_eq!(r(None, false, Some(3)).nearest(), 3);
}

#[test]
fn dependencies_exclude_the_metric_itself_and_parameters() {
    let metrics: HashSet<String> = ["revenue", "cogs", "margin"].map(String::from).into();
    let expr = parse("revenue[-1] * rate + cogs + margin[-1]").unwrap();
    let deps = metric_dependencies(&expr, "margin", &metrics);
    assert_eq!(deps, ["cogs", "revenue"].map(String::from).into());
}

#[test]
fn validation() {
    let metrics = ["revenue", "cogs"];
    let params: HashMap<String, u8> = [("growth_rate".to_owned(), 0)].into();
    let check = |src: &str, own: &str| validate(&parse(src).unwrap(), own, &metrics[..], &params);

    assert!(check("revenue[-1] * (1 + growth_rate)", "revenue").is_ok());
    assert!(check("sum(revenue[-1], 3)", "revenue").is_ok());
    assert!(check("(revenue - cogs) / revenue", "gross_margin").is_ok());
    // The metric's own key counts as known even if the caller left it out of the list.
    assert!(check("margin[-1] + cogs", "margin").is_ok());

    let err = check("revenue + profit", "x").unwrap_err();
    assert_eq!(err.position, 10);
    assert!(
        err.message.contains("unknown key `profit` at column 11"),
        "{err}"
    );

    let err = check("1 + growth_rate[-1]", "revenue").unwrap_err();
    assert_eq!(err.position, 4);
    assert!(err.message.contains("is a parameter"), "{err}");
    let err = check("sum(growth_rate, 2)", "revenue").unwrap_err();
    assert_eq!(err.position, 4);
    assert!(err.message.contains("cannot be summed"), "{err}");

    // A metric reading itself, at any offset, is a cycle for `schedule` to judge with the rest
    // of the model, not an error of the formula's keys.
    for src in [
        "revenue * 2",
        "revenue[-1] + revenue[1]",
        "sum(revenue[1], 3)",
    ] {
        assert!(check(src, "revenue").is_ok(), "{src}");
    }

    let both: BTreeSet<String> = ["growth_rate".to_owned()].into();
    let err = validate(&parse("growth_rate").unwrap(), "x", &both, &both).unwrap_err();
    assert!(
        err.message.contains("both a metric and a parameter"),
        "{err}"
    );
}

#[test]
fn cycles_are_found_with_their_path() {
    let find_cycle = |g| topological_order(g).err();
    let acyclic = graph(&[("c", &["a", "b"]), ("b", &["a"]), ("a", &[])]);
    assert_eq!(find_cycle(&acyclic), None);
    assert_eq!(
        topological_order(&acyclic),
        Ok(vec!["a".into(), "b".into(), "c".into()])
    );

    let cyclic = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert!(topological_order(&cyclic).is_err());

    // A cycle that does not start at the first node visited: the path starts where it loops.
    let tail = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["b"])]);
    assert_eq!(
        find_cycle(&tail),
        Some(vec!["b".into(), "c".into(), "b".into()])
    );

    let self_edge = graph(&[("a", &["a"])]);
    assert_eq!(find_cycle(&self_edge), Some(vec!["a".into(), "a".into()]));
}

#[test]
fn topological_order_includes_dependency_only_nodes_and_respects_edges() {
    let g = graph(&[
        ("profit", &["revenue", "costs"]),
        ("costs", &["cogs", "opex"]),
        ("revenue", &["units", "price"]),
    ]);
    let order = topological_order(&g).unwrap();
    assert_eq!(order.len(), 7);
    let at = |k: &str| order.iter().position(|x| x == k).unwrap();
    for (node, deps) in &g {
        for d in deps {
            assert!(at(d) < at(node), "{d} before {node} in {order:?}");
        }
    }
}

#[test]
fn a_long_chain_does_not_overflow_the_stack() {
    let n = 100_000;
    let g: BTreeMap<String, BTreeSet<String>> = (1..n)
        .map(|i| (format!("m{i:06}"), [format!("m{:06}", i - 1)].into()))
        .collect();
    let order = topological_order(&g).unwrap();
    assert_eq!(order.len(), n);
    assert_eq!(order[0], "m000000");
}
