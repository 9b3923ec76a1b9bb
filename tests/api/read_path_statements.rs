//! The read path's statement ceilings (issue "the read path"): at most one statement per level
//! of relationships plus one for the caller, authentication included, whatever the number of
//! rows. The four benchmark queries (`bench/queries.py`), a search, and one mutation of each
//! domain, each with an ADMIN's session, at two sizes.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

const Q1: &str =
    "query Q1($id: ID!) { scenario(id: $id) { id name model { name organization { name } } } }";
const Q2: &str = "query Q2($slug: String!) { organization(slug: $slug) { id name models(first: 25) { nodes { id name status
  createdBy { displayName } scenarios { nodes { id name kind } } } } } }";
const Q3: &str = "query Q3($id: ID!) { scenario(id: $id) { id name series { metric { key } points { period value } } } }";
const Q4: &str = "query Q4($orgId: ID!) { auditEvents(organizationId: $orgId, first: 100) { nodes { id action entityType
  createdAt actor { ... on User { displayName } } } } }";
/// A search whose hits grow with the models (each model's `units` metric and `Upside` scenario),
/// their nodes loaded: one statement for the search, then one per kind of hit.
const SEARCH: &str =
    "query S($orgId: ID!) { search(organizationId: $orgId, query: \"u\", first: 100) {
  kind title node { id ... on Scenario { name } ... on Metric { key } } } }";

/// An organization whose ADMIN reads it: `models` models of 4 INPUT metrics × 12 months, each
/// with Base and Upside (on Base), values stored on both; every change made through the API.
struct Fixture {
    app: TestApp,
    admin: TestUser,
    org: String,
    slug: String,
    scenarios: Vec<String>,
}

async fn call(app: &TestApp, user: &TestUser, query: &str, input: Value) -> Value {
    let res = app.gql(Some(&user.token), query, json!({"i": input})).await;
    assert!(res.errors().is_empty(), "{:#}", res.body);
    res.data().clone()
}

async fn fixture(models: usize) -> Fixture {
    let app = TestApp::spawn_uncached().await;
    let owner = app.user("owner").await;
    let admin = app.user("admin").await;
    let slug = format!("reads-{models}");
    let org = app.organization(&owner, &slug).await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    let mut scenarios = Vec::new();
    for m in 0..models {
        let model = call(
            &app,
            &owner,
            "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
            json!({"organizationId": org, "name": format!("M{m}"), "currency": "USD",
                   "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}),
        )
        .await["createModel"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for key in ["units", "price", "cost", "rent"] {
            call(
                &app,
                &owner,
                "mutation($i: DefineMetricInput!) { defineMetric(input: $i) { id } }",
                json!({"modelId": model, "key": key, "name": key, "unit": "NUMBER", "kind": "INPUT"}),
            )
            .await;
        }
        let mut base: Option<String> = None;
        for name in ["Base", "Upside"] {
            let id = call(
                &app,
                &owner,
                "mutation($i: CreateScenarioInput!) { createScenario(input: $i) { id } }",
                json!({"modelId": model, "name": name, "kind": "CUSTOM", "baseScenarioId": base}),
            )
            .await["createScenario"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let values: Vec<Value> = ["units", "price", "cost", "rent"]
                .iter()
                .flat_map(|key| {
                    (1..=12).map(move |month| {
                        json!({"metricKey": key, "period": format!("2026-{month:02}-01"),
                               "value": format!("{}", month * 10)})
                    })
                })
                .collect();
            call(
                &app,
                &owner,
                "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }",
                json!({"scenarioId": id, "values": values}),
            )
            .await;
            base.get_or_insert(id.clone());
            scenarios.push(id);
        }
    }
    Fixture {
        app,
        admin,
        org,
        slug,
        scenarios,
    }
}

/// Statements the server sends for one request (authentication included), and its data.
async fn count(fx: &Fixture, query: &str, variables: Value) -> (u64, Value) {
    let before = fx.app.statements();
    let res = fx.app.gql(Some(&fx.admin.token), query, variables).await;
    assert!(res.errors().is_empty(), "{:#}", res.body);
    (fx.app.statements() - before, res.data().clone())
}

#[tokio::test]
async fn benchmark_queries_stay_within_their_statement_ceilings() {
    for models in [1, 3] {
        let fx = fixture(models).await;
        let leaf = fx.scenarios.last().unwrap().clone();

        let (q1, data) = count(&fx, Q1, json!({"id": leaf})).await;
        assert_eq!(data["scenario"]["model"]["organization"]["name"], fx.slug);
        let (q2, data) = count(&fx, Q2, json!({"slug": fx.slug})).await;
        let nodes = data["organization"]["models"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), models);
        assert!(
            nodes
                .iter()
                .all(|m| m["scenarios"]["nodes"].as_array().unwrap().len() == 2
                    && m["createdBy"]["displayName"] == "owner")
        );
        let (q3, data) = count(&fx, Q3, json!({"id": leaf})).await;
        let series = data["scenario"]["series"].as_array().unwrap();
        assert_eq!(series.len(), 4);
        assert_eq!(series[0]["points"][11]["value"], "120.000000");
        let (q4, data) = count(&fx, Q4, json!({"orgId": fx.org})).await;
        let events = data["auditEvents"]["nodes"].as_array().unwrap();
        assert!(events.len() > 4 * models, "{events:?}");
        assert!(events.iter().all(|e| e["actor"]["displayName"] == "owner"));

        let (search, data) = count(&fx, SEARCH, json!({"orgId": fx.org})).await;
        let hits = data["search"].as_array().unwrap();
        let found = |kind: &str| hits.iter().filter(|h| h["kind"] == kind).count();
        assert_eq!(
            (found("METRIC"), found("SCENARIO")),
            (models, models),
            "{hits:?}"
        );
        assert!(hits.iter().all(|h| h["node"]["id"].is_string()));

        eprintln!("models {models}: Q1 {q1} Q2 {q2} Q3 {q3} Q4 {q4} search {search}");
        assert_eq!((q1, q2, q3, q4), (2, 5, 5, 3), "with {models} models");
        // The caller, the search, the metrics, the scenarios.
        assert_eq!(search, 4, "search with {models} models");
    }
}

/// One mutation of each domain that has mutations (the audit domain has none: every mutation
/// writes its event), each one transaction with its audit event, its role checked once (by the
/// domain, inside the transaction, against the roles read with the credential: no guard reads
/// the object first). Pinned so that a change which adds a round trip is noticed:
/// - `updateOrganization` 8: the caller; `BEGIN`, the organization locked, the update, the audit
///   chain's lock, its head, the event, `COMMIT`; the payload reads nothing more.
/// - `upsertMetricValues` 11: the caller; `BEGIN`, the scenario, its model locked, the model's
///   scenarios (locks) and metrics (keys), one multi-row upsert, the chain's lock, head, the
///   event, `COMMIT`.
/// - `createApiKey` 7: the caller; `BEGIN`, the insert, the chain's lock, head, the event,
///   `COMMIT`.
#[tokio::test]
async fn one_mutation_of_each_domain_stays_within_its_statement_count() {
    let fx = fixture(1).await;
    let scenario = fx.scenarios[0].clone();
    let update_org = "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { id name version viewerRole } }";
    let (orgs, data) = count(
        &fx,
        update_org,
        json!({"i": {"id": fx.org, "version": 1, "name": "Renamed"}}),
    )
    .await;
    assert_eq!(data["updateOrganization"]["name"], "Renamed");
    assert_eq!(data["updateOrganization"]["viewerRole"], "ADMIN");

    let upsert =
        "mutation($i: UpsertMetricValuesInput!) { upsertMetricValues(input: $i) { upserted } }";
    let (modelling, data) = count(
        &fx,
        upsert,
        json!({"i": {"scenarioId": scenario, "values": [
            {"metricKey": "units", "period": "2026-03-01", "value": "42"}]}}),
    )
    .await;
    assert_eq!(data["upsertMetricValues"]["upserted"], 1);

    let create_key = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id name role } secret } }";
    let (auth, data) = count(
        &fx,
        create_key,
        json!({"i": {"organizationId": fx.org, "name": "ci", "role": "VIEWER"}}),
    )
    .await;
    assert_eq!(data["createApiKey"]["apiKey"]["role"], "VIEWER");

    eprintln!("mutations: organizations {orgs} modelling {modelling} auth {auth}");
    assert_eq!((orgs, modelling, auth), (8, 11, 7));
}
