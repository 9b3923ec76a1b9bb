//! Every modelling guard, allowed and denied, for every kind of caller (table-driven, fresh
//! objects per case); reads for members and outsiders; tenant isolation; global IDs of the wrong
//! kind.

use serde_json::{Value, json};

use crate::{
    factories::{self, EVERYONE, Who, id},
    helpers::{TestApp, TestUser},
};

/// The lowest role an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Min {
    Analyst,
    Admin,
}

/// One organization with a member of every role, a stranger (member of an organization of their
/// own, with a model of their own) and a superadmin who is a member of nothing.
struct Cast {
    org: String,
    people: factories::Cast,
}

impl std::ops::Deref for Cast {
    type Target = factories::Cast;

    fn deref(&self) -> &factories::Cast {
        &self.people
    }
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        let people = factories::Cast::new(app).await;
        let org = people.org(app, "acme", None).await;
        // The stranger is OWNER somewhere else: a role, just not here.
        let elsewhere = app.organization(&people.stranger, "elsewhere").await;
        objects(app, &people.stranger, &elsewhere, "theirs").await;
        Self { org, people }
    }
}

/// The outcome of a guarded mutation: `None` when allowed, else the error code.
fn expected(who: Who, min: Min) -> Option<&'static str> {
    match who {
        Who::Anonymous => Some("UNAUTHENTICATED"),
        Who::Stranger => Some("NOT_FOUND"),
        Who::Superadmin | Who::Owner => None,
        Who::Admin => None,
        Who::Analyst if min == Min::Analyst => None,
        Who::Analyst | Who::Viewer => Some("FORBIDDEN"),
    }
}

/// Fresh modelling objects in one organization: a monthly model (Jan–Mar 2026), a parameter,
/// scenarios Base ← Child, an INPUT metric with a stored value and a DERIVED one reading it.
#[derive(Debug, Clone)]
struct Objects {
    org: String,
    model: String,
    growth: String,
    base: String,
    child: String,
    revenue: String,
    doubled: String,
}

async fn objects(app: &TestApp, user: &TestUser, org: &str, name: &str) -> Objects {
    let t = Some(user.token.as_str());
    let model = id(
        &app.gql(
            t,
            "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
            json!({"i": {"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
        )
        .await,
        "createModel",
    );
    let growth = id(
        &app.gql(
            t,
            "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { id } }",
            json!({"i": {"modelId": model, "key": "growth", "name": "Growth", "unit": "PERCENT", "defaultValue": "0.1"}}),
        )
        .await,
        "defineParameter",
    );
    let scenario = |name: &'static str, base: Option<String>| {
        app.gql(
            t,
            "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
            json!({"i": {"modelId": model, "name": name, "kind": "BASE", "baseScenarioId": base}}),
        )
    };
    let base = id(&scenario("Base", None).await, "createScenario");
    let child = id(
        &scenario("Child", Some(base.clone())).await,
        "createScenario",
    );
    let metric = |key: &'static str, formula: Option<&'static str>| {
        let kind = if formula.is_some() {
            "DERIVED"
        } else {
            "INPUT"
        };
        app.gql(
            t,
            "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
            json!({"i": {"modelId": model, "key": key, "name": key, "unit": "CURRENCY", "kind": kind, "formula": formula}}),
        )
    };
    let revenue = id(&metric("revenue", None).await, "defineMetric");
    let doubled = id(
        &metric("doubled", Some("revenue * (1 + growth)")).await,
        "defineMetric",
    );
    app.gql(
        t,
        "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
        json!({"i": {"scenarioId": base, "values": [{"metricKey": "revenue", "period": "2026-01-01", "value": "100"}]}}),
    )
    .await
    .data();
    Objects {
        org: org.to_owned(),
        model,
        growth,
        base,
        child,
        revenue,
        doubled,
    }
}

/// Everything a modelling mutation could change, as the owner sees it.
const SNAPSHOT: &str = "query($org: ID!, $model: ID!) {
  organization(id: $org) { models(first: 100) { totalCount nodes { name status version } } }
  model(id: $model) {
    name description status version
    parameters { key defaultValue }
    metrics { key name version formula dependsOn { key } }
    scenarios(first: 100) { nodes {
      name kind description isLocked version baseScenario { name }
      parameterValues { parameter { key } value isDefault }
      series { metric { key } points { period value } }
    } }
  }
}";

async fn snapshot(app: &TestApp, owner: &TestUser, o: &Objects) -> Value {
    app.gql(
        Some(&owner.token),
        SNAPSHOT,
        json!({"org": o.org, "model": o.model}),
    )
    .await
    .data()
    .clone()
}

/// A guarded modelling operation.
struct Op {
    name: &'static str,
    min: Min,
    action: &'static str,
    query: &'static str,
    vars: fn(&Objects, &str) -> Value,
}

static OPS: [Op; 15] = [
    Op {
        name: "createModel",
        min: Min::Analyst,
        action: "model.create",
        query: "mutation($i: CreateModelInput!) { createModel(input: $i) { id name } }",
        vars: |o, tag| json!({"i": {"organizationId": o.org, "name": format!("new {tag}"), "currency": "EUR", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}}),
    },
    Op {
        name: "updateModel",
        min: Min::Analyst,
        action: "model.update",
        query: "mutation($i: UpdateModelInput!) { updateModel(input: $i) { id name version } }",
        vars: |o, tag| json!({"i": {"id": o.model, "version": 1, "name": format!("renamed {tag}"), "description": "changed"}}),
    },
    Op {
        name: "archiveModel",
        min: Min::Analyst,
        action: "model.archive",
        query: "mutation($id: ID!) { archiveModel(id: $id, version: 1) { id status } }",
        vars: |o, _| json!({"id": o.model}),
    },
    Op {
        name: "deleteModel",
        min: Min::Admin,
        action: "model.delete",
        query: "mutation($id: ID!) { deleteModel(id: $id) }",
        vars: |o, _| json!({"id": o.model}),
    },
    Op {
        name: "createScenario",
        min: Min::Analyst,
        action: "scenario.create",
        query: "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id name } }",
        vars: |o, _| json!({"i": {"modelId": o.model, "name": "Upside", "kind": "UPSIDE", "baseScenarioId": o.base}}),
    },
    Op {
        name: "cloneScenario",
        min: Min::Analyst,
        action: "scenario.clone",
        query: "mutation($i: CloneScenarioInput!) { cloneScenario(input: $i) { id name } }",
        vars: |o, _| json!({"i": {"scenarioId": o.child, "name": "Copy"}}),
    },
    Op {
        name: "updateScenario",
        min: Min::Analyst,
        action: "scenario.update",
        query: "mutation($i: UpdateScenarioInput!) { updateScenario(input: $i) { id name version } }",
        vars: |o, _| json!({"i": {"id": o.child, "version": 1, "name": "Renamed", "kind": "DOWNSIDE"}}),
    },
    Op {
        name: "lockScenario",
        min: Min::Admin,
        action: "scenario.lock",
        query: "mutation($id: ID!) { lockScenario(id: $id, locked: true) { id isLocked } }",
        vars: |o, _| json!({"id": o.base}),
    },
    Op {
        name: "deleteScenario",
        min: Min::Analyst,
        action: "scenario.delete",
        query: "mutation($id: ID!) { deleteScenario(id: $id) }",
        vars: |o, _| json!({"id": o.child}),
    },
    Op {
        name: "defineParameter",
        min: Min::Analyst,
        action: "parameter.define",
        query: "mutation($i: DefineParameterInput!) { defineParameter(input: $i) { id key } }",
        vars: |o, _| json!({"i": {"modelId": o.model, "key": "tax_rate", "name": "Tax", "unit": "PERCENT", "defaultValue": "0.25"}}),
    },
    Op {
        name: "setParameterValue",
        min: Min::Analyst,
        action: "parameter_value.set",
        query: "mutation($i: SetParameterValueInput!) { setParameterValue(input: $i) { value } }",
        vars: |o, _| json!({"i": {"scenarioId": o.child, "parameterKey": "growth", "value": "0.3"}}),
    },
    Op {
        name: "defineMetric",
        min: Min::Analyst,
        action: "metric.define",
        query: "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id key } }",
        vars: |o, _| json!({"i": {"modelId": o.model, "key": "tripled", "name": "Tripled", "unit": "CURRENCY", "kind": "DERIVED", "formula": "revenue * 3"}}),
    },
    Op {
        name: "updateMetric",
        min: Min::Analyst,
        action: "metric.update",
        query: "mutation($i: UpdateMetricInput!) { updateMetric(input: $i) { id name version } }",
        vars: |o, _| json!({"i": {"id": o.doubled, "version": 1, "name": "Grown", "formula": "revenue * growth"}}),
    },
    Op {
        name: "deleteMetric",
        min: Min::Analyst,
        action: "metric.delete",
        query: "mutation($id: ID!) { deleteMetric(id: $id) }",
        vars: |o, _| json!({"id": o.doubled}),
    },
    Op {
        name: "upsertMetricValues",
        min: Min::Analyst,
        action: "metric_values.upsert",
        query: "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted removed } }",
        vars: |o, _| json!({"i": {"scenarioId": o.child, "values": [{"metricKey": "revenue", "period": "2026-02-01", "value": "250.5"}]}}),
    },
];

fn op(name: &str) -> &'static Op {
    OPS.iter().find(|o| o.name == name).expect("operation")
}

/// Run one operation as every kind of caller, each on fresh objects, and check the outcome, the
/// audit trail and the data.
async fn guard(name: &str) {
    let op = op(name);
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    for who in EVERYONE {
        let tag = format!("{name} {who:?}");
        let o = objects(&app, &cast.owner, &cast.org, &tag).await;
        let before = snapshot(&app, &cast.owner, &o).await;
        let audit_before = app.audit_rows().await;
        let res = app
            .gql(cast.token(who), op.query, (op.vars)(&o, &tag))
            .await;
        let audit_after = app.audit_rows().await;
        let after = snapshot(&app, &cast.owner, &o).await;
        match expected(who, op.min) {
            None => {
                assert!(res.errors().is_empty(), "{tag}: {:#}", res.body);
                assert!(!res.data().is_null(), "{tag}: {:#}", res.body);
                let new: Vec<&str> = audit_after[audit_before.len()..]
                    .iter()
                    .map(|r| r.action.as_str())
                    .collect();
                assert_eq!(new, [op.action], "{tag}: exactly one audit event");
                assert_ne!(before, after, "{tag}: the data changed");
            }
            Some(code) => {
                assert_eq!(res.code(), code, "{tag}: {:#}", res.body);
                assert!(res.body["data"].is_null(), "{tag}: no data: {:#}", res.body);
                assert_eq!(
                    audit_after.len(),
                    audit_before.len(),
                    "{tag}: no audit event"
                );
                assert_eq!(before, after, "{tag}: nothing changed");
            }
        }
    }
}

#[tokio::test]
async fn modelling_guard_create_model() {
    guard("createModel").await;
}

#[tokio::test]
async fn modelling_guard_update_model() {
    guard("updateModel").await;
}

#[tokio::test]
async fn modelling_guard_archive_model() {
    guard("archiveModel").await;
}

#[tokio::test]
async fn modelling_guard_delete_model() {
    guard("deleteModel").await;
}

#[tokio::test]
async fn modelling_guard_create_scenario() {
    guard("createScenario").await;
}

#[tokio::test]
async fn modelling_guard_clone_scenario() {
    guard("cloneScenario").await;
}

#[tokio::test]
async fn modelling_guard_update_scenario() {
    guard("updateScenario").await;
}

#[tokio::test]
async fn modelling_guard_lock_scenario() {
    guard("lockScenario").await;
}

#[tokio::test]
async fn modelling_guard_delete_scenario() {
    guard("deleteScenario").await;
}

#[tokio::test]
async fn modelling_guard_define_parameter() {
    guard("defineParameter").await;
}

#[tokio::test]
async fn modelling_guard_set_parameter_value() {
    guard("setParameterValue").await;
}

#[tokio::test]
async fn modelling_guard_define_metric() {
    guard("defineMetric").await;
}

#[tokio::test]
async fn modelling_guard_update_metric() {
    guard("updateMetric").await;
}

#[tokio::test]
async fn modelling_guard_delete_metric() {
    guard("deleteMetric").await;
}

#[tokio::test]
async fn modelling_guard_upsert_metric_values() {
    guard("upsertMetricValues").await;
}

/// Every read of the modelling graph, directly and through `node`/`nodes`.
const READS: &str = "query($model: ID!, $scenario: ID!, $parameter: ID!, $metric: ID!, $ids: [ID!]!) {
  model(id: $model) { name parameters { key } metrics { key } scenarios { totalCount } }
  scenario(id: $scenario) {
    name
    parameterValues { parameter { key } value }
    series(metricKeys: [\"revenue\", \"doubled\"], to: \"2026-02-01\") { metric { key } points { period value } }
  }
  m: node(id: $model) { id ... on FinancialModel { name } }
  s: node(id: $scenario) { id ... on Scenario { series(metricKeys: [\"doubled\"], to: \"2026-01-01\") { points { value } } } }
  p: node(id: $parameter) { id ... on Parameter { key defaultValue } }
  x: node(id: $metric) { id ... on Metric { key formula dependsOn { key } } }
  all: nodes(ids: $ids) { id }
}";

#[tokio::test]
async fn modelling_reads_for_members_outsiders_and_anonymous() {
    let app = TestApp::spawn().await;
    let cast = Cast::new(&app).await;
    let o = objects(&app, &cast.owner, &cast.org, "Read me").await;
    let vars = json!({
        "model": o.model, "scenario": o.child, "parameter": o.growth, "metric": o.doubled,
        "ids": [o.model, o.base, o.child, o.growth, o.revenue, o.doubled],
    });
    for who in EVERYONE {
        let res = app.gql(cast.token(who), READS, vars.clone()).await;
        if who == Who::Anonymous {
            // Organization-scoped reads are not for anonymous callers; `nodes` is non-null, so
            // its refusal nulls `data` (GraphQL spec, "Handling Field Errors").
            assert_eq!(res.body["data"], Value::Null, "{:#}", res.body);
            assert!(
                res.errors()
                    .iter()
                    .all(|e| e["extensions"]["code"] == "UNAUTHENTICATED"),
                "{:#}",
                res.body
            );
            continue;
        }
        let data = res.data();
        match who {
            Who::Viewer | Who::Analyst | Who::Admin | Who::Owner | Who::Superadmin => {
                assert_eq!(
                    data["model"],
                    json!({"name": "Read me", "parameters": [{"key": "growth"}], "metrics": [{"key": "revenue"}, {"key": "doubled"}], "scenarios": {"totalCount": 2}}),
                    "{who:?}"
                );
                assert_eq!(data["scenario"]["name"], "Child", "{who:?}");
                assert_eq!(
                    data["scenario"]["parameterValues"],
                    json!([{"parameter": {"key": "growth"}, "value": "0.100000"}]),
                    "{who:?}"
                );
                // Revenue inherited from Base; doubled = revenue × (1 + growth).
                assert_eq!(
                    data["scenario"]["series"],
                    json!([
                        {"metric": {"key": "revenue"}, "points": [{"period": "2026-01-01", "value": "100.000000"}, {"period": "2026-02-01", "value": null}]},
                        {"metric": {"key": "doubled"}, "points": [{"period": "2026-01-01", "value": "110.000000"}, {"period": "2026-02-01", "value": null}]},
                    ]),
                    "{who:?}"
                );
                assert_eq!(
                    data["m"],
                    json!({"id": o.model, "name": "Read me"}),
                    "{who:?}"
                );
                assert_eq!(
                    data["s"],
                    json!({"id": o.child, "series": [{"points": [{"value": "110.000000"}]}]}),
                    "{who:?}"
                );
                assert_eq!(data["p"]["key"], "growth", "{who:?}");
                assert_eq!(data["p"]["id"], o.growth.as_str(), "{who:?}");
                assert_eq!(
                    data["x"],
                    json!({"id": o.doubled, "key": "doubled", "formula": "revenue * (1 + growth)", "dependsOn": [{"key": "revenue"}]}),
                    "{who:?}"
                );
                let ids: Vec<&str> = data["all"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["id"].as_str().unwrap_or("<null>"))
                    .collect();
                assert_eq!(
                    ids,
                    [
                        &o.model, &o.base, &o.child, &o.growth, &o.revenue, &o.doubled
                    ]
                    .map(String::as_str),
                    "{who:?}"
                );
            }
            Who::Stranger | Who::Anonymous => {
                for field in ["model", "scenario", "m", "s", "p", "x"] {
                    assert!(data[field].is_null(), "{who:?} {field}: {data:#}");
                }
                assert_eq!(data["all"], json!([null, null, null, null, null, null]));
            }
        }
    }
}

/// A caller with every role in their own organization names the objects of another one by valid
/// global IDs: each operation is `NOT_FOUND`, exactly as for an object that does not exist, and
/// nothing changes. References across organizations inside an input are refused like unknown ones.
#[tokio::test]
async fn modelling_tenant_isolation() {
    let app = TestApp::spawn().await;
    let victim = app.user("victim").await;
    let theirs = app.organization(&victim, "victim").await;
    let a = objects(&app, &victim, &theirs, "Theirs").await;
    let intruder = app.user("intruder").await;
    let mine = app.organization(&intruder, "intruder").await;
    let b = objects(&app, &intruder, &mine, "Mine").await;
    // Objects of the intruder's organization that no longer exist, to compare messages with.
    let gone = objects(&app, &intruder, &mine, "Gone").await;
    let t = Some(intruder.token.as_str());
    for (query, id) in [
        (
            "mutation($id: ID!) { deleteScenario(id: $id) }",
            &gone.child,
        ),
        (
            "mutation($id: ID!) { deleteMetric(id: $id) }",
            &gone.doubled,
        ),
        ("mutation($id: ID!) { deleteModel(id: $id) }", &gone.model),
    ] {
        app.gql(t, query, json!({"id": id})).await.data();
    }

    let before = snapshot(&app, &victim, &a).await;
    let audit_before = app.audit_rows().await.len();
    for op in &OPS {
        let res = app.gql(t, op.query, (op.vars)(&a, "intruder")).await;
        assert_eq!(res.code(), "NOT_FOUND", "{}: {:#}", op.name, res.body);
        assert!(res.body["data"].is_null(), "{}: {:#}", op.name, res.body);
        // Indistinguishable from an object that does not exist.
        if op.name != "createModel" {
            let missing = app.gql(t, op.query, (op.vars)(&gone, "intruder")).await;
            assert_eq!(
                res.errors()[0]["message"],
                missing.errors()[0]["message"],
                "{}: {:#} vs {:#}",
                op.name,
                res.body,
                missing.body
            );
            assert_eq!(missing.code(), "NOT_FOUND", "{}", op.name);
        }
    }
    assert_eq!(app.audit_rows().await.len(), audit_before);
    assert_eq!(snapshot(&app, &victim, &a).await, before);

    // Reads see nothing.
    let vars = json!({
        "model": a.model, "scenario": a.child, "parameter": a.growth, "metric": a.doubled,
        "ids": [a.model, a.base, a.child, a.growth, a.revenue, a.doubled],
    });
    let res = app.gql(t, READS, vars).await;
    for field in ["model", "scenario", "m", "s", "p", "x"] {
        assert!(res.data()[field].is_null(), "{field}: {:#}", res.body);
    }
    assert_eq!(
        res.data()["all"],
        json!([null, null, null, null, null, null])
    );
    // So are the intruder's own objects of a deleted model, to the intruder.
    let vars = json!({
        "model": gone.model, "scenario": gone.base, "parameter": gone.growth, "metric": gone.revenue,
        "ids": [gone.model, gone.base, gone.child, gone.growth, gone.revenue, gone.doubled],
    });
    let res = app.gql(t, READS, vars).await;
    for field in ["model", "scenario", "m", "s", "p", "x"] {
        assert!(
            res.data()[field].is_null(),
            "deleted {field}: {:#}",
            res.body
        );
    }
    assert_eq!(
        res.data()["all"],
        json!([null, null, null, null, null, null])
    );

    // The intruder's own objects naming the victim's: refused like scenarios of another model.
    let cross: [(&str, Value, &str); 4] = [
        (
            "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
            json!({"i": {"modelId": b.model, "name": "Sneaky", "kind": "CUSTOM", "baseScenarioId": a.base}}),
            "input.baseScenarioId",
        ),
        (
            "mutation($i: UpdateScenarioInput!) { updateScenario(input: $i) { id } }",
            json!({"i": {"id": b.child, "version": 1, "baseScenarioId": a.base}}),
            "input.baseScenarioId",
        ),
        (
            "query($id: ID!, $other: ID!) { scenario(id: $id) { compare(otherScenarioId: $other) { metric { key } } } }",
            json!({"id": b.base, "other": a.base}),
            "otherScenarioId",
        ),
        (
            "query($id: ID!, $other: ID!) { scenario(id: $id) { compare(otherScenarioId: $other) { metric { key } } } }",
            json!({"id": b.base, "other": gone.base}),
            "otherScenarioId",
        ),
    ];
    let audit_before = app.audit_rows().await.len();
    for (query, vars, field) in cross {
        let res = app.gql(t, query, vars.clone()).await;
        assert_eq!(
            (res.code(), res.field()),
            ("BAD_USER_INPUT".to_owned(), Some(field.to_owned())),
            "{vars}: {:#}",
            res.body
        );
        assert!(
            !res.body.to_string().contains("Theirs"),
            "nothing of the victim's leaks: {:#}",
            res.body
        );
    }
    assert_eq!(app.audit_rows().await.len(), audit_before);
    assert_eq!(snapshot(&app, &victim, &a).await, before);
}

/// A global ID of the wrong kind is `BAD_USER_INPUT` on the field that carries it, for every
/// operation. The ID a guard checks is decoded before anything is looked up, so a stranger gets
/// the same answer as the owner; a second ID (a base scenario) only after the guard has passed.
#[tokio::test]
async fn modelling_ids_of_the_wrong_kind() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let o = objects(&app, &owner, &org, "Model").await;
    let stranger = app.user("stranger").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            op("createModel").query,
            json!({"i": {"organizationId": o.model, "name": "X", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-02-01"}}),
            "input.organizationId",
        ),
        (
            op("updateModel").query,
            json!({"i": {"id": o.base, "version": 1, "name": "X"}}),
            "input.id",
        ),
        (op("archiveModel").query, json!({"id": o.doubled}), "id"),
        (op("deleteModel").query, json!({"id": org}), "id"),
        (
            op("createScenario").query,
            json!({"i": {"modelId": o.base, "name": "X", "kind": "CUSTOM"}}),
            "input.modelId",
        ),
        (
            op("createScenario").query,
            json!({"i": {"modelId": o.model, "name": "X", "kind": "CUSTOM", "baseScenarioId": o.model}}),
            "input.baseScenarioId",
        ),
        (
            op("cloneScenario").query,
            json!({"i": {"scenarioId": o.model, "name": "X"}}),
            "input.scenarioId",
        ),
        (
            op("updateScenario").query,
            json!({"i": {"id": o.growth, "version": 1, "name": "X"}}),
            "input.id",
        ),
        (
            op("updateScenario").query,
            json!({"i": {"id": o.child, "version": 1, "baseScenarioId": o.revenue}}),
            "input.baseScenarioId",
        ),
        (op("lockScenario").query, json!({"id": o.model}), "id"),
        (op("deleteScenario").query, json!({"id": o.doubled}), "id"),
        (
            op("defineParameter").query,
            json!({"i": {"modelId": o.child, "key": "x", "name": "X", "unit": "NUMBER", "defaultValue": "1"}}),
            "input.modelId",
        ),
        (
            op("setParameterValue").query,
            json!({"i": {"scenarioId": o.model, "parameterKey": "growth", "value": "1"}}),
            "input.scenarioId",
        ),
        (
            op("defineMetric").query,
            json!({"i": {"modelId": o.revenue, "key": "x", "name": "X", "unit": "NUMBER", "kind": "INPUT"}}),
            "input.modelId",
        ),
        (
            op("updateMetric").query,
            json!({"i": {"id": o.growth, "version": 1, "name": "X"}}),
            "input.id",
        ),
        (op("deleteMetric").query, json!({"id": o.base}), "id"),
        (
            op("upsertMetricValues").query,
            json!({"i": {"scenarioId": o.model, "values": []}}),
            "input.scenarioId",
        ),
        (
            op("defineMetric").query,
            json!({"i": {"modelId": "not-a-global-id", "key": "x", "name": "X", "unit": "NUMBER", "kind": "INPUT"}}),
            "input.modelId",
        ),
        (
            "query($id: ID!) { model(id: $id) { name } }",
            json!({"id": o.base}),
            "id",
        ),
        (
            "query($id: ID!) { scenario(id: $id) { name } }",
            json!({"id": o.model}),
            "id",
        ),
        (
            "query($id: ID!, $other: ID!) { scenario(id: $id) { compare(otherScenarioId: $other) { metric { key } } } }",
            json!({"id": o.base, "other": o.model}),
            "otherScenarioId",
        ),
    ];
    let before = snapshot(&app, &owner, &o).await;
    let audit_before = app.audit_rows().await.len();
    for (query, vars, field) in &cases {
        for user in [&owner, &stranger] {
            let res = app.gql(Some(&user.token), query, vars.clone()).await;
            // The stranger cannot see the scenario whose field takes the argument; otherwise the
            // stranger is told what the owner is: an ID of the wrong kind is refused before any
            // role is checked, and says nothing about the data.
            if user.email == stranger.email && *field == "otherScenarioId" {
                assert!(res.data()["scenario"].is_null(), "{:#}", res.body);
                continue;
            }
            assert_eq!(
                (res.code(), res.field()),
                ("BAD_USER_INPUT".to_owned(), Some((*field).to_owned())),
                "{} {vars}: {:#}",
                user.email,
                res.body
            );
        }
    }
    assert_eq!(app.audit_rows().await.len(), audit_before);
    assert_eq!(snapshot(&app, &owner, &o).await, before);
}
