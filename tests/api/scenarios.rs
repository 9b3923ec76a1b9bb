//! Scenarios: inheritance chains, locks, clones, roles.

use serde_json::{Value, json};

use crate::{
    factories::id,
    helpers::{Gql, TestApp, TestUser},
};

async fn model(app: &TestApp, user: &TestUser, org: &str, name: &str) -> String {
    let res = app
        .gql(
            Some(&user.token),
            "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
            json!({"input": {"organizationId": org, "name": name, "currency": "EUR", "startPeriod": "2026-01-01", "endPeriod": "2026-06-01"}}),
        )
        .await;
    res.data()["createModel"]["id"].as_str().unwrap().to_owned()
}

async fn scenario(
    app: &TestApp,
    user: &TestUser,
    model: &str,
    name: &str,
    kind: &str,
    base: Option<&str>,
) -> Gql {
    app.gql(
        Some(&user.token),
        "mutation($input: CreateScenarioInput!) { createScenario(input: $input) { id name kind version isLocked baseScenario { name } model { name } } }",
        json!({"input": {"modelId": model, "name": name, "kind": kind, "baseScenarioId": base}}),
    )
    .await
}

const UPDATE: &str = "mutation($input: UpdateScenarioInput!) { updateScenario(input: $input) { name version baseScenario { name } } }";

#[tokio::test]
async fn scenarios_inherit_within_one_model_without_cycles() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let m = model(&app, &owner, &org, "Plan").await;
    let other = model(&app, &owner, &org, "Other").await;

    let base = id(
        &scenario(&app, &owner, &m, "Base", "BASE", None).await,
        "createScenario",
    );
    let res = scenario(&app, &owner, &m, "Upside", "UPSIDE", Some(&base)).await;
    assert_eq!(res.data()["createScenario"]["baseScenario"]["name"], "Base");
    assert_eq!(res.data()["createScenario"]["model"]["name"], "Plan");
    let upside = id(&res, "createScenario");
    let stretch = id(
        &scenario(&app, &owner, &m, "Stretch", "CUSTOM", Some(&upside)).await,
        "createScenario",
    );

    // A base from another model, a duplicate name, a cycle: refused, nothing written.
    let foreign = id(
        &scenario(&app, &owner, &other, "Foreign", "BASE", None).await,
        "createScenario",
    );
    let before = app.audit_actions().await.len();
    let res = scenario(&app, &owner, &m, "Mixed", "CUSTOM", Some(&foreign)).await;
    assert_eq!(
        (res.code(), res.field().as_deref()),
        ("BAD_USER_INPUT".into(), Some("input.baseScenarioId"))
    );
    assert_eq!(
        scenario(&app, &owner, &m, "base", "BASE", None)
            .await
            .code(),
        "CONFLICT"
    );
    let res = app
        .gql(
            Some(&owner.token),
            UPDATE,
            json!({"input": {"id": base, "version": 1, "baseScenarioId": stretch}}),
        )
        .await;
    assert_eq!(
        (res.code(), res.field().as_deref()),
        ("BAD_USER_INPUT".into(), Some("input.baseScenarioId"))
    );
    let res = app
        .gql(
            Some(&owner.token),
            UPDATE,
            json!({"input": {"id": base, "version": 1, "baseScenarioId": base}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    assert_eq!(app.audit_actions().await.len(), before);

    // Re-basing and removing the base; versions move on; a stale one conflicts.
    let res = app.gql(Some(&owner.token), UPDATE, json!({"input": {"id": stretch, "version": 1, "baseScenarioId": base, "name": "Stretch 2"}})).await;
    assert_eq!(
        res.data()["updateScenario"],
        json!({"name": "Stretch 2", "version": 2, "baseScenario": {"name": "Base"}})
    );
    let res = app
        .gql(
            Some(&owner.token),
            UPDATE,
            json!({"input": {"id": stretch, "version": 2, "baseScenarioId": null}}),
        )
        .await;
    assert_eq!(res.data()["updateScenario"]["baseScenario"], Value::Null);
    assert_eq!(
        app.gql(
            Some(&owner.token),
            UPDATE,
            json!({"input": {"id": stretch, "version": 2, "name": "x"}})
        )
        .await
        .code(),
        "CONFLICT"
    );

    // Listing with a kind filter.
    let q = "query($id: ID!, $kind: [ScenarioKind!]) { model(id: $id) { scenarios(kind: $kind) { totalCount nodes { name } } } }";
    let res = app
        .gql(
            Some(&owner.token),
            q,
            json!({"id": m, "kind": ["BASE", "UPSIDE"]}),
        )
        .await;
    assert_eq!(
        res.data()["model"]["scenarios"],
        json!({"totalCount": 2, "nodes": [{"name": "Base"}, {"name": "Upside"}]})
    );
}

#[tokio::test]
async fn locks_bases_and_deletion() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let analyst = app.user("analyst").await;
    let viewer = app.user("viewer").await;
    app.add_member(&owner, &org, &analyst, "ANALYST").await;
    app.add_member(&owner, &org, &viewer, "VIEWER").await;
    let m = model(&app, &analyst, &org, "Plan").await;
    assert_eq!(
        scenario(&app, &viewer, &m, "V", "BASE", None).await.code(),
        "FORBIDDEN"
    );
    let base = id(
        &scenario(&app, &analyst, &m, "Base", "BASE", None).await,
        "createScenario",
    );
    let down = id(
        &scenario(&app, &analyst, &m, "Down", "DOWNSIDE", Some(&base)).await,
        "createScenario",
    );

    let lock = "mutation($id: ID!, $locked: Boolean!) { lockScenario(id: $id, locked: $locked) { isLocked version } }";
    assert_eq!(
        app.gql(
            Some(&analyst.token),
            lock,
            json!({"id": down, "locked": true})
        )
        .await
        .code(),
        "FORBIDDEN"
    );
    let res = app
        .gql(
            Some(&owner.token),
            lock,
            json!({"id": down, "locked": true}),
        )
        .await;
    assert_eq!(
        res.data()["lockScenario"],
        json!({"isLocked": true, "version": 2})
    );

    let delete = "mutation($id: ID!) { deleteScenario(id: $id) }";
    assert_eq!(
        app.gql(
            Some(&analyst.token),
            UPDATE,
            json!({"input": {"id": down, "version": 2, "name": "x"}})
        )
        .await
        .code(),
        "CONFLICT"
    );
    assert_eq!(
        app.gql(Some(&analyst.token), delete, json!({"id": down}))
            .await
            .code(),
        "CONFLICT"
    );
    // The base of another scenario cannot go.
    assert_eq!(
        app.gql(Some(&analyst.token), delete, json!({"id": base}))
            .await
            .code(),
        "CONFLICT"
    );

    app.gql(
        Some(&owner.token),
        lock,
        json!({"id": down, "locked": false}),
    )
    .await
    .data();
    assert_eq!(
        app.gql(Some(&analyst.token), delete, json!({"id": down}))
            .await
            .data()["deleteScenario"],
        true
    );
    assert_eq!(
        app.gql(Some(&analyst.token), delete, json!({"id": base}))
            .await
            .data()["deleteScenario"],
        true
    );
    let res = app
        .gql(
            Some(&owner.token),
            "query($id: ID!) { scenario(id: $id) { id } node(id: $id) { id } }",
            json!({"id": base}),
        )
        .await;
    assert_eq!(res.data(), &json!({"scenario": null, "node": null}));

    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a.starts_with("scenario."))
        .collect();
    assert_eq!(
        actions,
        [
            "scenario.create",
            "scenario.create",
            "scenario.lock",
            "scenario.unlock",
            "scenario.delete",
            "scenario.delete"
        ]
    );
}

#[tokio::test]
async fn clones_copy_overrides_and_values_and_keep_the_base() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let m = model(&app, &owner, &org, "Plan").await;
    let base = id(
        &scenario(&app, &owner, &m, "Base", "BASE", None).await,
        "createScenario",
    );
    let up = id(
        &scenario(&app, &owner, &m, "Up", "UPSIDE", Some(&base)).await,
        "createScenario",
    );

    // Data behind the API: one parameter override and three stored values on "Up".
    app.sql_exec(
        "WITH s AS (SELECT id, model_id FROM scenarios WHERE name = 'Up'),
              p AS (INSERT INTO parameters (model_id, key, name, unit, default_value) SELECT model_id, 'growth', 'Growth', 'PERCENT', 0.05 FROM s RETURNING id),
              mt AS (INSERT INTO metrics (model_id, key, name, unit, kind) SELECT model_id, 'revenue', 'Revenue', 'CURRENCY', 'INPUT' FROM s RETURNING id),
              pv AS (INSERT INTO parameter_values (scenario_id, parameter_id, value) SELECT s.id, p.id, 0.1 FROM s, p)
         INSERT INTO metric_values (scenario_id, metric_id, period, value)
         SELECT s.id, mt.id, d::date, 100 FROM s, mt, generate_series('2026-01-01'::date, '2026-03-01'::date, '1 month') d"
    )
    .await;

    let res = app
        .gql(
            Some(&owner.token),
            "mutation($input: CloneScenarioInput!) { cloneScenario(input: $input) { id name kind isLocked baseScenario { name } } }",
            json!({"input": {"scenarioId": up, "name": "Up copy"}}),
        )
        .await;
    let clone = &res.data()["cloneScenario"];
    assert_eq!(clone["kind"], "CUSTOM");
    assert_eq!(clone["baseScenario"]["name"], "Base");
    assert_eq!(
        app.count_rows(
            "metric_values mv JOIN scenarios s ON s.id = mv.scenario_id WHERE s.name = 'Up copy'"
        )
        .await,
        3
    );
    assert_eq!(
        app.count_rows(
            "parameter_values pv JOIN scenarios s ON s.id = pv.scenario_id WHERE s.name = 'Up copy'"
        )
        .await,
        1
    );
    let counts = app
        .sql_texts("SELECT new_values::text AS t FROM audit_events WHERE action = 'scenario.clone'")
        .await;
    let counts: Value = serde_json::from_str(&counts[0]).unwrap();
    assert_eq!(
        (
            counts["metricValuesCopied"].clone(),
            counts["parameterValuesCopied"].clone()
        ),
        (json!(3), json!(1))
    );
}
