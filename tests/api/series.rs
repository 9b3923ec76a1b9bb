//! Metrics, formulas, values and series through the API, against values computed by hand.

use serde_json::{Value, json};

use crate::{
    factories::id,
    helpers::{Gql, TestApp, TestUser},
};

/// A small monthly model (Jan–Apr 2026) with three scenarios: Base ← Mid ← Leaf.
struct Fixture {
    model: String,
    base: String,
    mid: String,
    leaf: String,
}

async fn metric(
    app: &TestApp,
    user: &TestUser,
    model: &str,
    key: &str,
    formula: Option<&str>,
) -> Gql {
    let kind = if formula.is_some() {
        "DERIVED"
    } else {
        "INPUT"
    };
    app.gql(
        Some(&user.token),
        "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id key kind formula dependsOn { key } } }",
        json!({"i": {"modelId": model, "key": key, "name": key, "unit": "NUMBER", "kind": kind, "formula": formula}}),
    )
    .await
}

async fn upsert(app: &TestApp, user: &TestUser, scenario: &str, values: Value) -> Gql {
    app.gql(
        Some(&user.token),
        "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted removed scenario { name } } }",
        json!({"i": {"scenarioId": scenario, "values": values}}),
    )
    .await
}

async fn fixture(app: &TestApp, owner: &TestUser) -> Fixture {
    let t = Some(owner.token.as_str());
    let org = app.organization(owner, "acme").await;
    let model = id(
        &app.gql(t, "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }", json!({"i": {"organizationId": org, "name": "P&L", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-04-01"}})).await,
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
    let base = id(&scenario("Base", None).await, "createScenario");
    let mid = id(&scenario("Mid", Some(base.clone())).await, "createScenario");
    let leaf = id(&scenario("Leaf", Some(mid.clone())).await, "createScenario");
    app.gql(t, "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { key } }", json!({"i": {"modelId": model, "key": "growth_rate", "name": "Growth", "unit": "PERCENT", "defaultValue": "0.1"}}))
        .await
        .data();
    for (key, formula) in [
        ("cogs", None),
        ("units", None),
        ("revenue", Some("revenue[-1] * (1 + growth_rate)")),
        ("gross_margin", Some("(revenue - cogs) / revenue")),
        ("revenue_growth", Some("revenue / revenue[-1] - 1")),
        ("cost_per_unit", Some("cogs / units")),
    ] {
        metric(app, owner, &model, key, formula).await.data();
    }
    let v = |k: &str, p: &str, x: &str| json!({"metricKey": k, "period": p, "value": x});
    upsert(
        app,
        owner,
        &base,
        json!([
            v("revenue", "2026-01-01", "100"),
            v("cogs", "2026-01-01", "40"),
            v("cogs", "2026-02-01", "44"),
            v("cogs", "2026-04-01", "50"),
            v("units", "2026-01-01", "10"),
            v("units", "2026-02-01", "0")
        ]),
    )
    .await
    .data();
    app.gql(
        t,
        "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value } }",
        json!({"i": {"scenarioId": mid, "parameterKey": "growth_rate", "value": "0.2"}}),
    )
    .await
    .data();
    upsert(app, owner, &mid, json!([v("cogs", "2026-02-01", "30")]))
        .await
        .data();
    upsert(
        app,
        owner,
        &leaf,
        json!([v("revenue", "2026-03-01", "500")]),
    )
    .await
    .data();
    Fixture {
        model,
        base,
        mid,
        leaf,
    }
}

const SERIES: &str = "query($id: ID!, $keys: [String!], $from: Date, $to: Date) { scenario(id: $id) { series(metricKeys: $keys, from: $from, to: $to) { metric { key } points { period value } } } }";

fn values(res: &Gql) -> Value {
    let mut out = serde_json::Map::new();
    for s in res.data()["scenario"]["series"].as_array().unwrap() {
        let points: Vec<Value> = s["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].clone())
            .collect();
        out.insert(
            s["metric"]["key"].as_str().unwrap().to_owned(),
            Value::Array(points),
        );
    }
    Value::Object(out)
}

#[tokio::test]
async fn a_hand_computed_model_through_two_levels_of_inheritance() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let f = fixture(&app, &owner).await;
    let t = Some(owner.token.as_str());

    // Leaf: growth 0.2 from Mid; revenue seeded in Base, an actual of 500 stored on Leaf in March
    // overrides the formula; cogs for February from Mid, not Base; March cogs missing.
    let res = app.gql(t, SERIES, json!({"id": f.leaf})).await;
    assert_eq!(
        values(&res),
        json!({
            "cogs": ["40.000000", "30.000000", null, "50.000000"],
            "units": ["10.000000", "0.000000", null, null],
            "revenue": ["100.000000", "120.000000", "500.000000", "600.000000"],
            "gross_margin": ["0.600000", "0.750000", null, "0.916667"],
            "revenue_growth": [null, "0.200000", "3.166667", "0.200000"],
            "cost_per_unit": ["4.000000", null, null, null],
        })
    );
    // Base: the default growth rate.
    let res = app
        .gql(
            t,
            SERIES,
            json!({"id": f.base, "keys": ["revenue", "gross_margin"], "from": "2026-02-01"}),
        )
        .await;
    assert_eq!(
        values(&res),
        json!({"revenue": ["110.000000", "121.000000", "133.100000"], "gross_margin": ["0.600000", null, "0.624343"]})
    );
    // Offsets reach outside the requested range (but not the timeline).
    let res = app.gql(t, SERIES, json!({"id": f.mid, "keys": ["revenue_growth"], "from": "2026-03-01", "to": "2026-03-01"})).await;
    assert_eq!(values(&res), json!({"revenue_growth": ["0.200000"]}));
    assert_eq!(
        res.data()["scenario"]["series"][0]["points"][0]["period"],
        "2026-03-01"
    );

    // Compare Base (the base of the comparison) with Leaf.
    let q = "query($id: ID!, $other: ID!) { scenario(id: $id) { compare(otherScenarioId: $other, metricKeys: [\"revenue\", \"cost_per_unit\"]) { metric { key } points { period base other delta deltaPercent } } } }";
    let res = app.gql(t, q, json!({"id": f.base, "other": f.leaf})).await;
    // Revenue: equal in January, then Leaf's growth and its March actual; cost per unit: no
    // delta where either side has no value.
    insta::assert_json_snapshot!("base_against_leaf", res.data());

    // Bad ranges and keys.
    for (vars, field) in [
        (json!({"id": f.base, "keys": ["nope"]}), "metricKeys"),
        (json!({"id": f.base, "from": "2026-01-15"}), "from"),
        (json!({"id": f.base, "to": "2027-01-01"}), "to"),
    ] {
        let res = app.gql(t, SERIES, vars).await;
        assert_eq!(
            (res.code(), res.field().as_deref()),
            ("BAD_USER_INPUT".into(), Some(field))
        );
    }
}

#[tokio::test]
async fn formulas_are_validated_on_save_and_dependencies_kept() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let f = fixture(&app, &owner).await;
    let t = Some(owner.token.as_str());

    let res = metric(
        &app,
        &owner,
        &f.model,
        "margin_2",
        Some("(revenue - ) / revenue"),
    )
    .await;
    assert_eq!(
        (res.code(), res.field().as_deref()),
        ("BAD_USER_INPUT".into(), Some("input.formula"))
    );
    assert!(
        res.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("column"),
        "{:#}",
        res.body
    );
    let res = metric(&app, &owner, &f.model, "margin_2", Some("revenue - ebitda")).await;
    assert!(
        res.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("ebitda"),
        "{:#}",
        res.body
    );
    let res = metric(&app, &owner, &f.model, "loop", Some("loop + 1")).await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    let res = metric(&app, &owner, &f.model, "cogs_2", None).await;
    let cogs2 = id(&res, "defineMetric");
    let res = metric(&app, &owner, &f.model, "a_metric", Some("cogs_2 * 2")).await;
    assert_eq!(
        res.data()["defineMetric"]["dependsOn"],
        json!([{"key": "cogs_2"}])
    );
    let a = id(&res, "defineMetric");

    // Turning cogs_2 into... it is INPUT: no formula allowed; a cycle through an update is refused.
    let update = "mutation($i: UpdateMetricInput!) { updateMetric(input: $i) { formula version dependsOn { key } } }";
    let res = app
        .gql(
            t,
            update,
            json!({"i": {"id": cogs2, "version": 1, "formula": "a_metric"}}),
        )
        .await;
    assert_eq!(
        (res.code(), res.field().as_deref()),
        ("BAD_USER_INPUT".into(), Some("input.formula"))
    );
    let b = id(
        &metric(&app, &owner, &f.model, "b_metric", Some("a_metric + 1")).await,
        "defineMetric",
    );
    let res = app
        .gql(
            t,
            update,
            json!({"i": {"id": a, "version": 1, "formula": "b_metric * 2"}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    assert!(
        res.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("a_metric → b_metric → a_metric"),
        "{:#}",
        res.body
    );
    let res = app
        .gql(
            t,
            update,
            json!({"i": {"id": a, "version": 1, "formula": "cogs_2 * 3 + units"}}),
        )
        .await;
    assert_eq!(
        res.data()["updateMetric"],
        json!({"formula": "cogs_2 * 3 + units", "version": 2, "dependsOn": [{"key": "cogs_2"}, {"key": "units"}]})
    );

    // A metric another formula reads cannot be deleted.
    let delete = "mutation($id: ID!) { deleteMetric(id: $id) }";
    assert_eq!(
        app.gql(t, delete, json!({"id": cogs2})).await.code(),
        "CONFLICT"
    );
    assert_eq!(
        app.gql(t, delete, json!({"id": b})).await.data()["deleteMetric"],
        true
    );
    let q = "query($id: ID!) { model(id: $id) { metrics(kind: DERIVED) { key } } }";
    let keys: Vec<String> = app.gql(t, q, json!({"id": f.model})).await.data()["model"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        [
            "revenue",
            "gross_margin",
            "revenue_growth",
            "cost_per_unit",
            "a_metric"
        ]
    );
}

const UPDATE_METRIC: &str =
    "mutation($i: UpdateMetricInput!) { updateMetric(input: $i) { formula version } }";

#[tokio::test]
async fn recursion_backward_from_a_stored_terminal_value_and_forward_through_two_metrics() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let f = fixture(&app, &owner).await;
    let t = Some(owner.token.as_str());

    // Backward: discounted from the last period, which only a stored value can give.
    metric(&app, &owner, &f.model, "free_cash_flow", None)
        .await
        .data();
    let res = metric(
        &app,
        &owner,
        &f.model,
        "value_to_go",
        Some("free_cash_flow + value_to_go[1] * 0.97"),
    )
    .await;
    assert_eq!(
        res.data()["defineMetric"]["dependsOn"],
        json!([{"key": "free_cash_flow"}])
    );
    // Forward through two metrics: this period's opening is the last period's closing.
    let opening = id(
        &metric(&app, &owner, &f.model, "opening", Some("0")).await,
        "defineMetric",
    );
    metric(
        &app,
        &owner,
        &f.model,
        "closing",
        Some("opening + free_cash_flow"),
    )
    .await
    .data();
    let res = app
        .gql(
            t,
            UPDATE_METRIC,
            json!({"i": {"id": opening, "version": 1, "formula": "closing[-1]"}}),
        )
        .await;
    assert_eq!(res.data()["updateMetric"]["formula"], "closing[-1]");

    let v = |k: &str, p: &str, x: &str| json!({"metricKey": k, "period": p, "value": x});
    upsert(
        &app,
        &owner,
        &f.base,
        json!([
            v("free_cash_flow", "2026-01-01", "10"),
            v("free_cash_flow", "2026-02-01", "20"),
            v("free_cash_flow", "2026-03-01", "30"),
            v("free_cash_flow", "2026-04-01", "40"),
            v("opening", "2026-01-01", "5"),
        ]),
    )
    .await
    .data();
    // The seed of the backward recursion is stored on Mid (and so inherited by Leaf), not Base.
    upsert(
        &app,
        &owner,
        &f.mid,
        json!([v("value_to_go", "2026-04-01", "100")]),
    )
    .await
    .data();

    let keys = json!(["value_to_go", "opening", "closing"]);
    let res = app.gql(t, SERIES, json!({"id": f.mid, "keys": keys})).await;
    // April: the seed. March: 30 + 100 × 0.97. February: 20 + 127 × 0.97 = 143.19. January:
    // 10 + 143.19 × 0.97 = 148.8943.
    assert_eq!(
        values(&res),
        json!({
            "value_to_go": ["148.894300", "143.190000", "127.000000", "100.000000"],
            "opening": ["5.000000", "15.000000", "35.000000", "65.000000"],
            "closing": ["15.000000", "35.000000", "65.000000", "105.000000"],
        })
    );
    // Leaf inherits the seed; a range reads the recursion from outside itself.
    let res = app
        .gql(
            t,
            SERIES,
            json!({"id": f.leaf, "keys": ["value_to_go"], "from": "2026-02-01", "to": "2026-02-01"}),
        )
        .await;
    assert_eq!(values(&res), json!({"value_to_go": ["143.190000"]}));
    // Base has no seed: April reads May, past the end of the timeline, so the whole chain is
    // null, while the forward recursion is the same as on Mid.
    let res = app
        .gql(t, SERIES, json!({"id": f.base, "keys": keys}))
        .await;
    assert_eq!(
        values(&res),
        json!({
            "value_to_go": [null, null, null, null],
            "opening": ["5.000000", "15.000000", "35.000000", "65.000000"],
            "closing": ["15.000000", "35.000000", "65.000000", "105.000000"],
        })
    );
}

#[tokio::test]
async fn cycles_within_a_period_or_in_both_directions_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let f = fixture(&app, &owner).await;
    let t = Some(owner.token.as_str());
    let a = id(
        &metric(&app, &owner, &f.model, "a", Some("a[-1] + cogs")).await,
        "defineMetric",
    );
    metric(&app, &owner, &f.model, "b", Some("a[1]"))
        .await
        .data();
    let p = id(
        &metric(&app, &owner, &f.model, "p", Some("cogs * 2")).await,
        "defineMetric",
    );
    metric(&app, &owner, &f.model, "q", Some("p + 1"))
        .await
        .data();

    let before = (
        app.count_rows("metrics").await,
        app.count_rows("metric_dependencies").await,
        app.audit_actions().await.len(),
    );
    let refused = |res: &Gql, named: &str| {
        assert_eq!(
            (res.code(), res.field().as_deref()),
            ("BAD_USER_INPUT".into(), Some("input.formula")),
            "{:#}",
            res.body
        );
        let message = res.errors()[0]["message"].as_str().unwrap().to_owned();
        assert!(
            message.starts_with(&format!(
                "this formula creates a dependency cycle {named}. "
            )),
            "{message}"
        );
    };
    refused(
        &metric(&app, &owner, &f.model, "x", Some("x[-1] + x[1]")).await,
        "reading both earlier and later periods: x → x[1] → x[-1]",
    );
    refused(
        &metric(&app, &owner, &f.model, "x", Some("sum(x, 3)")).await,
        "within one period: x → x",
    );
    refused(
        &app.gql(
            t,
            UPDATE_METRIC,
            json!({"i": {"id": a, "version": 1, "formula": "a[-1] + b"}}),
        )
        .await,
        "reading both earlier and later periods: a → a[-1] → b → a[1]",
    );
    refused(
        &app.gql(
            t,
            UPDATE_METRIC,
            json!({"i": {"id": p, "version": 1, "formula": "q"}}),
        )
        .await,
        "within one period: p → q → p",
    );

    // Nothing changed: no metric, no dependency, no audit event, the formulas as they were.
    assert_eq!(
        (
            app.count_rows("metrics").await,
            app.count_rows("metric_dependencies").await,
            app.audit_actions().await.len(),
        ),
        before
    );
    let q = "query($id: ID!) { model(id: $id) { metrics(kind: DERIVED) { key formula version } } }";
    let res = app.gql(t, q, json!({"id": f.model})).await;
    let formulas: Vec<Value> = res.data()["model"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| ["a", "p"].contains(&m["key"].as_str().unwrap()))
        .cloned()
        .collect();
    assert_eq!(
        formulas,
        [
            json!({"key": "a", "formula": "a[-1] + cogs", "version": 1}),
            json!({"key": "p", "formula": "cogs * 2", "version": 1}),
        ]
    );
}

#[tokio::test]
async fn upserts_are_all_or_nothing_and_bounded() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let f = fixture(&app, &owner).await;
    let before = app.count_rows("metric_values").await;
    let audit_before = app.audit_actions().await.len();
    let v = |k: &str, p: &str, x: Value| json!({"metricKey": k, "period": p, "value": x});
    for (values, field) in [
        (
            json!([
                v("cogs", "2026-03-01", json!("1")),
                v("nope", "2026-03-01", json!("1"))
            ]),
            "input.values.1.metricKey",
        ),
        (
            json!([
                v("cogs", "2026-03-01", json!("1")),
                v("cogs", "2026-03-15", json!("1"))
            ]),
            "input.values.1.period",
        ),
        (
            json!([
                v("cogs", "2026-03-01", json!("1")),
                v("cogs", "2026-05-01", json!("1"))
            ]),
            "input.values.1.period",
        ),
        (
            json!([
                v("cogs", "2026-03-01", json!("1")),
                v("cogs", "2026-04-01", json!("1e20"))
            ]),
            "input.values.1.value",
        ),
        (
            json!([
                v("cogs", "2026-03-01", json!("1")),
                v("cogs", "2026-03-01", json!("2"))
            ]),
            "input.values.1",
        ),
    ] {
        let res = upsert(&app, &owner, &f.base, values.clone()).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{values}");
        if res.field().is_some() {
            assert_eq!(res.field().as_deref(), Some(field), "{values}");
        }
    }
    assert_eq!(app.count_rows("metric_values").await, before);
    assert_eq!(app.audit_actions().await.len(), audit_before);

    // Update one, add one, remove one: one statement set, one audit event.
    let res = upsert(
        &app,
        &owner,
        &f.base,
        json!([
            v("cogs", "2026-01-01", json!("41")),
            v("cogs", "2026-03-01", json!(42.5)),
            v("units", "2026-02-01", Value::Null)
        ]),
    )
    .await;
    assert_eq!(
        res.data()["upsertMetricValues"],
        json!({"upserted": 2, "removed": 1, "scenario": {"name": "Base"}})
    );
    assert_eq!(app.count_rows("metric_values").await, before + 1 - 1);
    let actions = app.audit_actions().await;
    assert_eq!(
        actions.last().map(String::as_str),
        Some("metric_values.upsert")
    );

    // 10,001 values are refused; 10,000 are accepted (`ten_thousand_values_in_one_call`).
    let too_many: Vec<Value> = (0..10_001)
        .map(|_| v("cogs", "2026-01-01", json!("1")))
        .collect();
    let res = upsert(&app, &owner, &f.base, Value::Array(too_many)).await;
    assert_eq!(
        (res.code(), res.field().as_deref()),
        ("BAD_USER_INPUT".into(), Some("input.values"))
    );

    // Locked scenarios refuse values.
    app.gql(
        Some(&owner.token),
        "mutation($id: ID!) { lockScenario(id: $id, locked: true) { id } }",
        json!({"id": f.leaf}),
    )
    .await
    .data();
    assert_eq!(
        upsert(
            &app,
            &owner,
            &f.leaf,
            json!([v("cogs", "2026-01-01", json!("1"))])
        )
        .await
        .code(),
        "CONFLICT"
    );
}

/// `key period value` of every stored value, ordered, as PostgreSQL prints them.
async fn stored_values(app: &TestApp) -> Vec<String> {
    app.sql_texts(
        "SELECT m.key || ' ' || v.period || ' ' || v.value AS t FROM metric_values v \
         JOIN metrics m ON m.id = v.metric_id ORDER BY m.key, v.period",
    )
    .await
}

#[tokio::test]
async fn ten_thousand_values_in_one_call() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let t = Some(owner.token.as_str());
    let org = app.organization(&owner, "acme").await;
    // 17 metrics × 600 months (2000-01 … 2049-12) hold 10,200 values.
    let model = id(
        &app.gql(t, "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }", json!({"i": {"organizationId": org, "name": "Long", "currency": "USD", "startPeriod": "2000-01-01", "endPeriod": "2049-12-01"}})).await,
        "createModel",
    );
    let keys: Vec<String> = (0..17).map(|k| format!("m{k:02}")).collect();
    for key in &keys {
        metric(&app, &owner, &model, key, None).await.data();
    }
    let scenario = id(
        &app.gql(
            t,
            "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
            json!({"i": {"modelId": model, "name": "Big", "kind": "CUSTOM"}}),
        )
        .await,
        "createScenario",
    );
    let slots: Vec<(String, String)> = keys
        .iter()
        .flat_map(|k| {
            (0..600).map(move |m| (k.clone(), format!("{}-{:02}-01", 2000 + m / 12, m % 12 + 1)))
        })
        .take(10_000)
        .collect();
    // Six decimal places, negatives, and a different value per slot and per round.
    let value = |i: usize, round: usize| {
        let sign = if i.is_multiple_of(5) { "-" } else { "" };
        format!(
            "{sign}{}.{:06}",
            i * 3 + round,
            (i * 7919 + round) % 1_000_000
        )
    };
    let audit_before = app.audit_actions().await.len();

    // Round 1: 10,000 new values, across several statements of the one transaction.
    let values: Vec<Value> = slots
        .iter()
        .enumerate()
        .map(|(i, (k, p))| json!({"metricKey": k, "period": p, "value": value(i, 1)}))
        .collect();
    let res = upsert(&app, &owner, &scenario, Value::Array(values)).await;
    assert_eq!(
        res.data()["upsertMetricValues"],
        json!({"upserted": 10_000, "removed": 0, "scenario": {"name": "Big"}})
    );
    let expected: Vec<String> = slots
        .iter()
        .enumerate()
        .map(|(i, (k, p))| format!("{k} {p} {}", value(i, 1)))
        .collect();
    assert_eq!(stored_values(&app).await, expected);

    // Round 2: the first 2,500 removed, the other 7,500 changed.
    let values: Vec<Value> = slots
        .iter()
        .enumerate()
        .map(|(i, (k, p))| {
            let v = if i < 2_500 {
                Value::Null
            } else {
                json!(value(i, 2))
            };
            json!({"metricKey": k, "period": p, "value": v})
        })
        .collect();
    let res = upsert(&app, &owner, &scenario, Value::Array(values)).await;
    assert_eq!(
        res.data()["upsertMetricValues"],
        json!({"upserted": 7_500, "removed": 2_500, "scenario": {"name": "Big"}})
    );
    let expected: Vec<String> = slots
        .iter()
        .enumerate()
        .skip(2_500)
        .map(|(i, (k, p))| format!("{k} {p} {}", value(i, 2)))
        .collect();
    assert_eq!(stored_values(&app).await, expected);

    // One audit event per call, a summary rather than the values.
    let rows = app.audit_rows().await;
    let events: Vec<_> = rows[audit_before..].iter().collect();
    assert_eq!(events.len(), 2, "{events:?}");
    for (event, (upserted, removed)) in events.iter().zip([(10_000, 0), (7_500, 2_500)]) {
        assert_eq!(event.action, "metric_values.upsert");
        assert_eq!(
            event.new_values,
            Some(json!({
                "upserted": upserted,
                "removed": removed,
                "metrics": keys,
                "periods": {"from": "2000-01-01", "to": "2049-12-01", "count": 600},
            }))
        );
    }
}
