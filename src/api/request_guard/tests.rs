//! The guard against a naive expander on random small documents, and against the attacks and the
//! standard introspection queries.

use std::collections::HashMap;

use async_graphql::parser::{
    parse_query,
    types::{ExecutableDocument, Selection, SelectionSet},
};
use proptest::prelude::*;

use super::{GuardLimits, SchemaBounds, inspect};

const GRAPHIQL: &str = include_str!("../../../tests/api/fixtures/introspection/graphiql.graphql");
const APOLLO: &str = include_str!("../../../tests/api/fixtures/introspection/apollo.graphql");
const CODEGEN: &str =
    include_str!("../../../tests/api/fixtures/introspection/graphql-codegen.graphql");

fn limits() -> GuardLimits {
    GuardLimits {
        max_selections: 2_000,
        max_fragments: 100,
        max_aliases: 100,
        max_introspection_depth: 15,
        max_introspection_cost: 200_000,
    }
}

fn unlimited() -> GuardLimits {
    GuardLimits {
        max_selections: u64::MAX - 1,
        max_fragments: usize::MAX,
        max_aliases: u64::MAX - 1,
        max_introspection_depth: u64::MAX - 1,
        max_introspection_cost: u64::MAX - 1,
    }
}

fn bounds() -> SchemaBounds {
    SchemaBounds::from_sdl(&crate::api::schema::sdl())
}

fn parse(text: &str) -> ExecutableDocument {
    parse_query(text).expect("test documents parse")
}

/// `fragment F1 on Query { ...F0 ...F0 }` … up to `levels`, and a query spreading the last.
pub(super) fn fragment_chain(levels: usize) -> String {
    let mut text = String::from("fragment F0 on Query { __typename }\n");
    for i in 1..=levels {
        text.push_str(&format!(
            "fragment F{i} on Query {{ ...F{j} ...F{j} }}\n",
            j = i - 1
        ));
    }
    text.push_str(&format!("query {{ ...F{levels} }}"));
    text
}

/// `{ __schema { types { possibleTypes { interfaces { … { name } } } } } }` with `levels`
/// `possibleTypes { interfaces { … } }` pairs.
pub(super) fn nested_introspection(levels: usize) -> String {
    let open = "possibleTypes { interfaces { ".repeat(levels);
    let close = "} } ".repeat(levels);
    format!("{{ __schema {{ types {{ {open}name {close}}} }} }}")
}

/// Expansion by brute force, following every spread: `None` on a cycle (checked from every
/// fragment, as the guard does). (selections, aliases, depth).
fn naive(doc: &ExecutableDocument) -> Option<(u64, u64, u64)> {
    fn walk(
        doc: &ExecutableDocument,
        set: &SelectionSet,
        path: &mut Vec<String>,
    ) -> Option<(u64, u64, u64)> {
        let mut total = (0, 0, 0);
        for item in &set.items {
            let (s, a, d) = match &item.node {
                Selection::Field(f) => {
                    let (s, a, d) = walk(doc, &f.node.selection_set.node, path)?;
                    (s + 1, a + u64::from(f.node.alias.is_some()), d + 1)
                }
                Selection::InlineFragment(i) => walk(doc, &i.node.selection_set.node, path)?,
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    if path.contains(&name) {
                        return None;
                    }
                    match doc.fragments.get(name.as_str()) {
                        Some(f) => {
                            path.push(name);
                            let out = walk(doc, &f.node.selection_set.node, path)?;
                            path.pop();
                            out
                        }
                        None => (0, 0, 0),
                    }
                }
            };
            total = (total.0 + s, total.1 + a, total.2.max(d));
        }
        Some(total)
    }
    for (name, f) in &doc.fragments {
        walk(doc, &f.node.selection_set.node, &mut vec![name.to_string()])?;
    }
    let (_, op) = doc.operations.iter().next()?;
    walk(doc, &op.node.selection_set.node, &mut Vec::new())
}

/// A random selection set over fragments `F0`..`F{fragments}` (the last one never defined).
fn selection_set(fragments: usize) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("a".to_owned()),
        Just("x: b".to_owned()),
        (0..=fragments).prop_map(|i| format!("...F{i}")),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4)
                .prop_map(|items| format!("c {{ {} }}", items.join(" "))),
            prop::collection::vec(inner.clone(), 1..4)
                .prop_map(|items| format!("y: d {{ {} }}", items.join(" "))),
            prop::collection::vec(inner, 1..4)
                .prop_map(|items| format!("... on Query {{ {} }}", items.join(" "))),
        ]
    })
}

fn document() -> impl Strategy<Value = String> {
    (0usize..5).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::collection::vec(selection_set(n), 1..4), n),
            prop::collection::vec(selection_set(n), 1..4),
        )
            .prop_map(|(fragments, op)| {
                let mut text = String::new();
                for (i, body) in fragments.iter().enumerate() {
                    text.push_str(&format!(
                        "fragment F{i} on Query {{ {} }}\n",
                        body.join(" ")
                    ));
                }
                text.push_str(&format!("query {{ {} }}", op.join(" ")));
                text
            })
    })
}

proptest! {
    #[test]
    fn expansion_equals_naive_expansion(text in document()) {
        let doc = parse(&text);
        let bounds = bounds();
        match (naive(&doc), inspect(&doc, None, &unlimited(), &bounds)) {
            (None, Err(err)) => prop_assert_eq!(err.limit, "fragment cycle"),
            (Some((selections, aliases, depth)), Ok(shape)) => {
                prop_assert_eq!(shape.selections, selections);
                prop_assert_eq!(shape.aliases, aliases);
                prop_assert_eq!(shape.depth, depth);
            }
            (naive, guard) => prop_assert!(false, "naive {naive:?}, guard {guard:?} for {text}"),
        }
    }

    #[test]
    fn never_panics_and_work_stays_linear(text in document(), cap in 0u64..50) {
        let doc = parse(&text);
        let limits = GuardLimits { max_selections: cap, max_aliases: cap, max_fragments: 3, ..limits() };
        let steps = match inspect(&doc, Some("missing"), &limits, &bounds()) {
            Ok(shape) => shape.steps,
            Err(err) => err.steps,
        };
        // Each selection node is visited at most a few times (spreads collected, expanded, costed).
        prop_assert!(steps <= 4 * text.len() as u64 + 1_000, "{steps} steps for {text}");
    }
}

#[test]
fn a_fragment_chain_is_refused_after_little_work() {
    for levels in [30, 40, 1_000] {
        let doc = parse(&fragment_chain(levels.min(99)));
        let err = inspect(&doc, None, &limits(), &bounds()).expect_err("refused");
        assert_eq!(err.limit, "max_selections");
        assert_eq!(err.code(), "QUERY_TOO_COMPLEX");
        assert!(err.measured > 2_000);
        assert!(err.steps < 1_000, "{} steps", err.steps);
    }
}

#[test]
fn cycles_are_refused_and_unknown_fragments_count_nothing() {
    let cycle = parse("fragment A on Query { ...B } fragment B on Query { a ...A } { ...A }");
    let err = inspect(&cycle, None, &limits(), &bounds()).expect_err("cycle");
    assert_eq!(err.limit, "fragment cycle");
    let own = parse("fragment A on Query { ...A } { a }");
    assert!(inspect(&own, None, &limits(), &bounds()).is_err());
    let unknown = parse("{ a ...Nowhere b { ...Nowhere } }");
    let shape = inspect(&unknown, None, &limits(), &bounds()).expect("passes to validation");
    assert_eq!((shape.selections, shape.depth), (2, 1));
}

#[test]
fn aliases_are_counted_through_spreads() {
    let aliases: String = (0..20).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let text = format!(
        "fragment A on Query {{ {aliases} }} fragment B on Query {{ ...A ...A ...A }} {{ ...B ...B }}"
    );
    let err = inspect(&parse(&text), None, &limits(), &bounds()).expect_err("120 aliases");
    assert_eq!((err.limit, err.measured), ("max_aliases", 120));
}

#[test]
fn only_the_named_operation_counts() {
    let big: String = (0..150).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let text = format!("query Big {{ {big} }} query Small {{ me {{ id }} }}");
    let doc = parse(&text);
    let shape = inspect(&doc, Some("Small"), &limits(), &bounds()).expect("small passes");
    assert_eq!(shape.selections, 2);
    assert!(inspect(&doc, Some("Big"), &limits(), &bounds()).is_err());
    // No name among several: execution refuses, but validation sees them all.
    assert!(inspect(&doc, None, &limits(), &bounds()).is_err());
}

#[test]
fn standard_introspection_queries_fit_and_nested_ones_do_not() {
    let bounds = bounds();
    let mut costs = HashMap::new();
    for (name, text) in [
        ("graphiql", GRAPHIQL),
        ("apollo", APOLLO),
        ("codegen", CODEGEN),
    ] {
        let shape = inspect(&parse(text), None, &limits(), &bounds)
            .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        assert!(shape.introspection_only);
        costs.insert(name, (shape.introspection_cost, shape.depth));
    }
    println!("standard queries (cost, depth): {costs:?}");
    // Five levels are 13 deep: only the estimate refuses them. Ten are past the depth cap too.
    let err = inspect(&parse(&nested_introspection(5)), None, &limits(), &bounds)
        .expect_err("nested introspection");
    assert_eq!(err.limit, "max_introspection_cost");
    assert!(err.measured > 200_000);
    let err = inspect(&parse(&nested_introspection(10)), None, &limits(), &bounds)
        .expect_err("nested introspection");
    assert_eq!(err.code(), "QUERY_TOO_COMPLEX");
    let mut unbounded = unlimited();
    unbounded.max_introspection_depth = 15;
    let err = inspect(&parse(&nested_introspection(10)), None, &unbounded, &bounds)
        .expect_err("nested introspection");
    assert_eq!(err.limit, "max_introspection_depth");
    for levels in 1..=6 {
        let cost = inspect(
            &parse(&nested_introspection(levels)),
            None,
            &unlimited(),
            &bounds,
        )
        .map(|s| s.introspection_cost);
        println!("nested introspection, {levels} levels: {cost:?}");
    }
}

#[test]
fn introspection_inside_a_mixed_query_is_costed_too() {
    let text = nested_introspection(6).replacen("{ __schema", "{ me { id } __schema", 1);
    let err = inspect(&parse(&text), None, &limits(), &bounds()).expect_err("costed");
    assert_eq!(err.limit, "max_introspection_cost");
}
