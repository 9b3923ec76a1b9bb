//! Hostile input: document. Fragment chains, alias bombs through spreads, nested introspection,
//! deep nesting and expensive selections, each refused with `QUERY_TOO_COMPLEX` before
//! validation or execution, with the guard's own work (`extensions.steps`) measured; the
//! standard introspection queries of GraphiQL, Apollo and graphql-codegen still answered.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};

use crate::helpers::{Gql, TestApp};

/// Generous: refusing takes milliseconds; expanding a 30-level chain took async-graphql minutes.
const BACKSTOP: Duration = Duration::from_secs(5);

const GRAPHIQL: &str = include_str!("../fixtures/introspection/graphiql.graphql");
const APOLLO: &str = include_str!("../fixtures/introspection/apollo.graphql");
const CODEGEN: &str = include_str!("../fixtures/introspection/graphql-codegen.graphql");

/// `fragment F1 on Query { ...F0 ...F0 }` … `fragment F{levels}`, and `query { ...F{levels} }`.
fn fragment_chain(levels: usize) -> String {
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

/// `{ __schema { types { possibleTypes { interfaces { … { name } } } } } }`, `levels` pairs.
fn nested_introspection(levels: usize) -> String {
    let open = "possibleTypes { interfaces { ".repeat(levels);
    let close = "} } ".repeat(levels);
    format!("{{ __schema {{ types {{ {open}name {close}}} }} }}")
}

/// Assert a refusal by the guard (or async-graphql's own limits) and return its extensions.
#[track_caller]
fn refused(res: &Gql) -> Value {
    assert_eq!(res.code(), "QUERY_TOO_COMPLEX", "{:#}", res.body);
    assert!(res.body["data"].is_null(), "{:#}", res.body);
    res.errors()[0]["extensions"].clone()
}

#[tokio::test]
async fn fragment_chains_are_refused_quickly_after_little_work() {
    let app = TestApp::spawn().await;
    for levels in [30, 40] {
        let started = Instant::now();
        let res = app.gql(None, &fragment_chain(levels), json!({})).await;
        let elapsed = started.elapsed();
        println!(
            "{levels}-level fragment chain refused in {elapsed:?}: {}",
            res.body
        );
        let ext = refused(&res);
        assert_eq!(ext["limit"], "max_selections");
        assert!(ext["measured"].as_u64().is_some_and(|m| m > 2_000), "{ext}");
        // The chain holds ~3 selection nodes per level: the guard visits each a few times.
        assert!(ext["steps"].as_u64().is_some_and(|s| s < 500), "{ext}");
        assert!(elapsed < BACKSTOP, "{levels} levels took {elapsed:?}");
    }
}

#[tokio::test]
async fn fragment_cycles_and_too_many_fragments_are_refused() {
    let app = TestApp::spawn().await;
    let cycle = "fragment A on Query { ...B } fragment B on Query { __typename ...A } { ...A }";
    assert_eq!(
        refused(&app.gql(None, cycle, json!({})).await)["limit"],
        "fragment cycle"
    );
    let many: String = (0..101)
        .map(|i| format!("fragment F{i} on Query {{ __typename }}\n"))
        .collect();
    let res = app
        .gql(None, &format!("{many}{{ __typename }}"), json!({}))
        .await;
    assert_eq!(refused(&res)["limit"], "max_fragments");
}

#[tokio::test]
async fn an_alias_bomb_through_spreads_is_refused() {
    let app = TestApp::spawn().await;
    let aliases: String = (0..20).map(|i| format!("a{i}: __typename ")).collect();
    let query = format!(
        "fragment A on Query {{ {aliases} }} fragment B on Query {{ ...A ...A ...A }} {{ ...B ...B }}"
    );
    let ext = refused(&app.gql(None, &query, json!({})).await);
    assert_eq!(
        (ext["limit"].as_str(), ext["measured"].as_u64()),
        (Some("max_aliases"), Some(120))
    );
    // A hundred aliases, the cap, pass.
    let hundred: String = (0..100).map(|i| format!("a{i}: __typename ")).collect();
    app.gql(None, &format!("{{ {hundred} }}"), json!({}))
        .await
        .data();
}

#[tokio::test]
async fn nested_introspection_is_refused() {
    let app = TestApp::spawn().await;
    for levels in [5, 10] {
        let started = Instant::now();
        let ext = refused(
            &app.gql(None, &nested_introspection(levels), json!({}))
                .await,
        );
        assert!(
            ext["limit"] == "max_introspection_cost" || ext["limit"] == "max_introspection_depth",
            "{ext}"
        );
        assert!(started.elapsed() < BACKSTOP);
    }
    // Three levels (~40 KB) are a legitimate question.
    let res = app.gql(None, &nested_introspection(3), json!({})).await;
    assert!(res.data()["__schema"]["types"].is_array());
}

#[tokio::test]
async fn the_standard_introspection_queries_are_answered() {
    let app = TestApp::spawn().await;
    for (client, query) in [
        ("graphiql", GRAPHIQL),
        ("apollo", APOLLO),
        ("codegen", CODEGEN),
    ] {
        let res = app
            .post_json(
                None,
                json!({"query": query, "operationName": "IntrospectionQuery"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{client}");
        let schema = &res.data()["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query", "{client}");
        assert!(
            schema["types"].as_array().is_some_and(|t| t.len() > 50),
            "{client}"
        );
    }
}

#[tokio::test]
async fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let app = TestApp::spawn().await;
    // Just under the 1 MiB body limit, so the parser, not the body limit, meets it.
    let fields = format!("{}{}", "{a".repeat(400_000), "}".repeat(100_000));
    let ext = refused(&app.gql(None, &fields, json!({})).await);
    assert_eq!(ext["limit"], "nesting");
    let list = format!("{{ a(x: {}) }}", "[".repeat(900_000));
    assert_eq!(
        refused(&app.gql(None, &list, json!({})).await)["limit"],
        "nesting"
    );
    // In variables the JSON parser's own recursion limit refuses the body.
    let body = format!(
        r#"{{"query": "query($x: JSON) {{ __typename }}", "variables": {{"x": {}1{}}}}}"#,
        "[".repeat(450_000),
        "]".repeat(450_000)
    );
    let (status, _, _) = app
        .send(
            Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nesting within the cap still reaches the parser, whose own limit (64) answers.
    let deep = format!("{}b{}", "{a".repeat(100), "}".repeat(100));
    assert!(!app.gql(None, &deep, json!({})).await.errors().is_empty());
}

#[tokio::test]
async fn healthz_answers_while_hostile_requests_run() {
    let app = TestApp::spawn().await;
    let hostile = async {
        for levels in [30, 40] {
            refused(&app.gql(None, &fragment_chain(levels), json!({})).await);
            refused(&app.gql(None, &nested_introspection(10), json!({})).await);
        }
    };
    let health = async {
        let started = Instant::now();
        let (status, _, _) = app
            .send(
                Request::get("/healthz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        (status, started.elapsed())
    };
    let (_, (status, elapsed)) = tokio::join!(hostile, health);
    assert_eq!(status, StatusCode::OK);
    assert!(elapsed < BACKSTOP, "healthz took {elapsed:?}");
}

#[tokio::test]
async fn a_hundred_series_are_refused_and_a_few_pass_validation() {
    let app = TestApp::spawn().await;
    let user = app.user("analyst").await;
    let series = |n: usize| -> String {
        let fields: String = (0..n)
            .map(|i| {
                format!(
                    "s{i}: scenario(id: \"U2NlbmFyaW86MA\") {{ series {{ points {{ value }} }} }} "
                )
            })
            .collect();
        format!("{{ {fields} }}")
    };
    refused(&app.gql(Some(&user.token), &series(100), json!({})).await);
    let res = app.gql(Some(&user.token), &series(10), json!({})).await;
    assert!(
        res.errors()
            .iter()
            .all(|e| e["extensions"]["code"] != "QUERY_TOO_COMPLEX"),
        "{:#}",
        res.body
    );
}

#[tokio::test]
async fn nested_pages_cost_their_sizes() {
    let app = TestApp::spawn().await;
    let user = app.user("owner").await;
    app.organization(&user, "acme").await;
    // Every scalar of a scenario, in a page of scenarios, of models, of organizations.
    let query = |first: u32| {
        format!(
            "{{ me {{ organizations(first: {first}) {{ edges {{ node {{ models(first: {first}) {{ \
             edges {{ node {{ scenarios(first: {first}) {{ edges {{ node {{ id name kind description \
             isLocked version createdAt updatedAt baseScenario {{ id }} }} }} }} }} }} }} }} }} }} }} }}"
        )
    };
    refused(&app.gql(Some(&user.token), &query(100), json!({})).await);
    let res = app.gql(Some(&user.token), &query(3), json!({})).await;
    assert!(res.data()["me"]["organizations"]["edges"].is_array());
}
