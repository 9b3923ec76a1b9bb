//! Hostile input: formulas. A formula's size is capped when it is saved (length before any
//! parsing, nodes and arguments while parsing), and reading series is bounded by a per-request
//! evaluation budget with each scenario evaluated once per operation, however many fields ask.

use std::time::{Duration, Instant};

use finvision::domain::modelling::evaluation::EvaluationStats;
use serde_json::{Value, json};

use crate::helpers::{Gql, TestApp, TestUser};

/// A monthly model over 2026 (12 periods) with two scenarios, Upside inheriting from Base, a
/// parameter `p` = 2 (3 in Upside), an INPUT metric `r` and a DERIVED `d = r * p + 1`.
struct Plan {
    owner: TestUser,
    model: String,
    base: String,
    upside: String,
    /// The metric `d`.
    derived: String,
}

const PERIODS: u64 = 12;
/// Per period: `r` costs 1, `d = r * p + 1` has 5 nodes.
const COST_PER_PERIOD: u64 = 1 + 5;

fn id_of(res: &Gql, field: &str) -> String {
    res.data()[field]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{:#}", res.body))
        .to_owned()
}

async fn define(app: &TestApp, owner: &TestUser, model: &str, key: &str, formula: &str) -> Gql {
    let kind = if formula.is_empty() {
        "INPUT"
    } else {
        "DERIVED"
    };
    let formula = (!formula.is_empty()).then_some(formula);
    app.gql(
        Some(&owner.token),
        "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
        json!({"i": {"modelId": model, "key": key, "name": key, "unit": "NUMBER", "kind": kind, "formula": formula}}),
    )
    .await
}

async fn plan_model(app: &TestApp) -> Plan {
    let owner = app.user("owner").await;
    let t = Some(owner.token.as_str());
    let org = app.organization(&owner, "acme").await;
    let model = id_of(
        &app.gql(t, "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }", json!({"i": {"organizationId": org, "name": "Plan", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}})).await,
        "createModel",
    );
    let scenario = |name: &str, base: Option<String>| {
        let vars = json!({"i": {"modelId": model, "name": name, "kind": "CUSTOM", "baseScenarioId": base}});
        app.gql(
            t,
            "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
            vars,
        )
    };
    let base = id_of(&scenario("Base", None).await, "createScenario");
    let upside = id_of(
        &scenario("Upside", Some(base.clone())).await,
        "createScenario",
    );
    app.gql(t, "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { key } }", json!({"i": {"modelId": model, "key": "p", "name": "P", "unit": "NUMBER", "defaultValue": "2"}}))
        .await
        .data();
    app.gql(
        t,
        "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value } }",
        json!({"i": {"scenarioId": upside, "parameterKey": "p", "value": "3"}}),
    )
    .await
    .data();
    define(app, &owner, &model, "r", "").await.data();
    let derived = id_of(
        &define(app, &owner, &model, "d", "r * p + 1").await,
        "defineMetric",
    );
    let values: Vec<Value> = (1..=12)
        .map(|m| json!({"metricKey": "r", "period": format!("2026-{m:02}-01"), "value": m.to_string()}))
        .collect();
    upsert(app, &owner, &base, Value::Array(values))
        .await
        .data();
    Plan {
        owner,
        model,
        base,
        upside,
        derived,
    }
}

async fn upsert(app: &TestApp, owner: &TestUser, scenario: &str, values: Value) -> Gql {
    app.gql(
        Some(&owner.token),
        "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
        json!({"i": {"scenarioId": scenario, "values": values}}),
    )
    .await
}

fn stats(app: &TestApp) -> EvaluationStats {
    app.app.core().evaluation_stats()
}

/// `(code, field, message)` of the first error.
fn refusal(res: &Gql) -> (String, Option<String>, String) {
    let message = res.errors()[0]["message"].as_str().unwrap_or("").to_owned();
    (res.code(), res.field(), message)
}

#[tokio::test]
async fn a_90000_argument_formula_is_refused_before_parsing_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let plan = plan_model(&app).await;
    let formula = format!("min({})", vec!["sum(p,300)"; 90_000].join(","));
    assert!(formula.len() < 1024 * 1024 - 1024, "fits in a 1 MiB body");
    let metrics_before = app.count_rows("metrics").await;
    let audit_before = app.count_rows("audit_events").await;

    let started = Instant::now();
    let res = define(&app, &plan.owner, &plan.model, "attack", &formula).await;
    let elapsed = started.elapsed();
    let (code, field, message) = refusal(&res);
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(field.as_deref(), Some("input.formula"));
    assert!(
        message.contains("too long") && message.contains("at most 2000"),
        "{message}"
    );
    eprintln!("90,000-argument formula refused in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // The same formula as an update of an existing metric.
    let res = app
        .gql(
            Some(&plan.owner.token),
            "mutation($i: UpdateMetricInput!) { updateMetric(input: $i) { formula } }",
            json!({"i": {"id": plan.derived, "version": 1, "formula": formula}}),
        )
        .await;
    assert_eq!(
        (res.code(), res.field().as_deref()),
        ("BAD_USER_INPUT".into(), Some("input.formula"))
    );
    assert_eq!(app.count_rows("metrics").await, metrics_before);
    assert_eq!(app.count_rows("audit_events").await, audit_before);
    assert_eq!(
        app.sql_texts("SELECT formula AS t FROM metrics WHERE key = 'd'")
            .await,
        vec!["r * p + 1".to_owned()]
    );
}

#[tokio::test]
async fn length_nodes_and_arguments_are_capped_on_save() {
    let app = TestApp::spawn().await;
    let plan = plan_model(&app).await;
    let save = |key: &'static str, formula: String| {
        let (owner, model) = (&plan.owner, &plan.model);
        let app = &app;
        async move { define(app, owner, model, key, &formula).await }
    };
    // Inner spaces: the ends of a formula are trimmed before it is measured.
    let padded = |n: usize| format!("r{}+ 1", " ".repeat(n - 4));
    assert_eq!(padded(2_001).chars().count(), 2_001);
    let res = save("long", padded(2_001)).await;
    let (code, field, message) = refusal(&res);
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("BAD_USER_INPUT", Some("input.formula"))
    );
    assert!(message.contains("at most 2000 are allowed"), "{message}");
    save("long", padded(2_000)).await.data();

    // 65 arguments to one call; 64 are fine.
    let args = |n: usize| format!("max({})", vec!["r"; n].join(","));
    let (code, field, message) = refusal(&save("wide", args(65)).await);
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("BAD_USER_INPUT", Some("input.formula"))
    );
    assert!(
        message.contains("too many arguments to `max`") && message.contains("at most 64"),
        "{message}"
    );
    save("wide", args(64)).await.data();

    // Eight calls of 64 arguments: 527 nodes in 1,047 characters.
    let many = vec![args(64); 8].join("+");
    assert!(many.len() < 2_000);
    let (code, field, message) = refusal(&save("big", many).await);
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("BAD_USER_INPUT", Some("input.formula"))
    );
    assert!(message.contains("at most 500"), "{message}");
    save("big", vec![args(64); 7].join("+")).await.data();
    assert_eq!(
        app.sql_texts("SELECT key AS t FROM metrics ORDER BY key")
            .await,
        vec!["big", "d", "long", "r", "wide"]
    );
}

/// `n` aliases of `series` on one scenario, each with its own keys and range.
fn aliased_series(n: usize) -> String {
    let fields: Vec<String> = (0..n)
        .map(|i| {
            let month = i % 12 + 1;
            let keys = if i % 2 == 0 { "[\"d\"]" } else { "[\"r\", \"d\"]" };
            format!(
                "s{i}: series(metricKeys: {keys}, from: \"2026-{month:02}-01\") {{ metric {{ key }} points {{ period value }} }}"
            )
        })
        .collect();
    format!(
        "query($id: ID!) {{ scenario(id: $id) {{ {} }} }}",
        fields.join(" ")
    )
}

#[tokio::test]
async fn a_hundred_aliases_of_series_evaluate_the_scenario_once() {
    // The complexity limit refuses 100 `series` by default (53 each); lifted here, the memo alone
    // must keep the work at one evaluation.
    let app = TestApp::spawn_with(|c| c.max_complexity = 100_000).await;
    let plan = plan_model(&app).await;
    let t = Some(plan.owner.token.as_str());
    let before = stats(&app);
    let started = Instant::now();
    let res = app
        .gql(t, &aliased_series(100), json!({"id": plan.upside}))
        .await;
    let elapsed = started.elapsed();
    let scenario = &res.data()["scenario"];
    let after = stats(&app);
    eprintln!("100 aliases: {elapsed:?}, {before:?} → {after:?}");
    assert_eq!(after.evaluations - before.evaluations, 1);
    assert_eq!(after.cells - before.cells, 2 * PERIODS);
    assert_eq!(after.cost - before.cost, COST_PER_PERIOD * PERIODS);
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");

    // Each alias got its own slice, computed with Upside's p = 3 on Base's r.
    assert_eq!(
        scenario["s0"][0]["points"].as_array().map(Vec::len),
        Some(12)
    );
    assert_eq!(scenario["s0"][0]["points"][0]["value"], "4.000000");
    let s11 = &scenario["s11"];
    assert_eq!(s11[0]["metric"]["key"], "r");
    assert_eq!(
        s11[1]["points"],
        json!([{"period": "2026-12-01", "value": "37.000000"}])
    );

    // `compare` shares the memo: series of both scenarios plus their comparison, two evaluations.
    let before = stats(&app);
    let q = "query($a: ID!, $b: ID!) { a: scenario(id: $a) { series { metric { key } } compare(otherScenarioId: $b, metricKeys: [\"d\"], from: \"2026-03-01\", to: \"2026-03-01\") { points { base other delta } } } b: scenario(id: $b) { series { metric { key } } x: series(metricKeys: [\"d\"]) { metric { key } } } }";
    let res = app
        .gql(t, q, json!({"a": plan.base, "b": plan.upside}))
        .await;
    assert_eq!(
        res.data()["a"]["compare"][0]["points"][0],
        json!({"base": "7.000000", "other": "10.000000", "delta": "3.000000"})
    );
    assert_eq!(stats(&app).evaluations - before.evaluations, 2);
}

#[tokio::test]
async fn each_mutation_field_sees_fresh_series() {
    let app = TestApp::spawn().await;
    let plan = plan_model(&app).await;
    let q = "mutation($i: UpsertMetricValuesInput!, $j: UpsertMetricValuesInput!) { a: upsertMetricValues(input: $i) { scenario { series(metricKeys: [\"d\"], to: \"2026-01-01\") { points { value } } } } b: upsertMetricValues(input: $j) { scenario { series(metricKeys: [\"d\"], to: \"2026-01-01\") { points { value } } } } }";
    let value = |v: &str| json!({"scenarioId": plan.base, "values": [{"metricKey": "r", "period": "2026-01-01", "value": v}]});
    let res = app
        .gql(
            Some(&plan.owner.token),
            q,
            json!({"i": value("10"), "j": value("20")}),
        )
        .await;
    let point =
        |alias: &str| res.data()[alias]["scenario"]["series"][0]["points"][0]["value"].clone();
    assert_eq!(
        (point("a"), point("b")),
        (json!("21.000000"), json!("41.000000"))
    );
}

#[tokio::test]
async fn the_evaluation_budget_refuses_work_before_it_is_done() {
    // One evaluation costs 72: the budget admits one scenario per request, not two.
    let one = COST_PER_PERIOD * PERIODS;
    let app = TestApp::spawn_with(|c| c.eval_budget = one + one / 2).await;
    let plan = plan_model(&app).await;
    let t = Some(plan.owner.token.as_str());
    let series = "query($id: ID!) { scenario(id: $id) { a: series { points { value } } b: series(metricKeys: [\"d\"]) { points { value } } } }";
    let before = stats(&app);
    app.gql(t, series, json!({"id": plan.base})).await.data();
    assert_eq!(stats(&app).evaluations - before.evaluations, 1);

    let compare = "query($a: ID!, $b: ID!) { scenario(id: $a) { compare(otherScenarioId: $b) { points { delta } } } }";
    let before = stats(&app);
    let res = app
        .gql(t, compare, json!({"a": plan.base, "b": plan.upside}))
        .await;
    let (code, _, message) = refusal(&res);
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(
        message.contains(&format!("evaluation budget of {}", one + one / 2)),
        "{message}"
    );
    // The refused scenario was never evaluated. The admitted one was evaluated at most once:
    // both are loaded and charged concurrently, and when the refusal comes first the request
    // fails before the admitted evaluation finishes.
    assert!(stats(&app).evaluations - before.evaluations <= 1);

    // A batch shares one budget: two operations on different scenarios do not both fit.
    let res = app
        .post_json(
            t,
            json!([
                {"query": series, "variables": {"id": plan.base}},
                {"query": series, "variables": {"id": plan.upside}},
            ]),
        )
        .await;
    let batch = res.body.as_array().expect("a batch response");
    assert!(batch[0].get("errors").is_none(), "{:#}", res.body);
    assert_eq!(
        batch[1]["errors"][0]["extensions"]["code"],
        "QUERY_TOO_COMPLEX"
    );

    // A scenario bigger than the whole budget is refused outright.
    // Complexity lifted so that a hundred `series` reach the evaluation budget.
    let app = TestApp::spawn_with(|c| {
        c.eval_budget = one - 1;
        c.max_complexity = 100_000;
    })
    .await;
    let small = plan_model(&app).await;
    let before = stats(&app);
    let res = app
        .gql(Some(&small.owner.token), series, json!({"id": small.base}))
        .await;
    assert_eq!(res.code(), "QUERY_TOO_COMPLEX");
    assert_eq!(stats(&app), before);

    // A hundred fields asking for it: one refusal, remembered, not a hundred loads.
    let statements = app.statements();
    let res = app
        .gql(
            Some(&small.owner.token),
            &aliased_series(100),
            json!({"id": small.base}),
        )
        .await;
    let errors = res.errors();
    assert_eq!(errors.len(), 100);
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "QUERY_TOO_COMPLEX")
    );
    assert_eq!(stats(&app), before);
    let spent = app.statements() - statements;
    eprintln!("100 refused aliases: {spent} statements");
    assert!(spent < 20, "{spent} statements");
}
