//! The one write path of audited changes (`audit::Trail`), seen from the trail: a creation
//! records the row's values, an update only what changed, a deletion the row's last values, and
//! a refused change records nothing.

use serde_json::{Value, json};

use crate::factories::{ModelBuilder, Team};
use crate::helpers::{AuditRow, TestApp};

/// The events written since `before`.
async fn events_since(app: &TestApp, before: usize) -> Vec<AuditRow> {
    app.audit_rows().await.split_off(before)
}

#[tokio::test]
async fn created_updated_and_deleted_rows_are_recorded_by_their_values() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let owner = Some(team.owner.token.as_str());

    let before = app.audit_rows().await.len();
    let model = ModelBuilder::new("Plan")
        .build(&app, &team.owner, &team.org)
        .await
        .id;
    let created = events_since(&app, before).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].action, "model.create");
    assert_eq!(created[0].entity_type, "FinancialModel");
    assert_eq!(created[0].old_values, None);
    let values = created[0].new_values.clone().expect("the created values");
    assert_eq!(values["name"], "Plan");
    assert_eq!(values["currency"], "USD");
    assert_eq!(values["status"], "DRAFT");

    // An update records only the fields that differ, both sides.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            owner,
            "mutation($i: UpdateModelInput!) { updateModel(input: $i) { version } }",
            json!({"i": {"id": model, "version": 1, "name": "Plan B", "currency": "USD"}}),
        )
        .await;
    assert_eq!(res.data()["updateModel"]["version"], 2, "{:#}", res.body);
    let updated = events_since(&app, before).await;
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].old_values, Some(json!({"name": "Plan"})));
    assert_eq!(updated[0].new_values, Some(json!({"name": "Plan B"})));

    // A stale version changes nothing and records nothing.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            owner,
            "mutation($i: UpdateModelInput!) { updateModel(input: $i) { version } }",
            json!({"i": {"id": model, "version": 1, "name": "Plan C"}}),
        )
        .await;
    assert_eq!(res.code(), "CONFLICT", "{:#}", res.body);
    assert!(events_since(&app, before).await.is_empty());

    // A deletion keeps the row's last values, as the values before the change.
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            owner,
            "mutation($id: ID!) { deleteModel(id: $id) }",
            json!({"id": model}),
        )
        .await;
    assert_eq!(res.data()["deleteModel"], true, "{:#}", res.body);
    let deleted = events_since(&app, before).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].action, "model.delete");
    assert_eq!(deleted[0].new_values, None);
    let last = deleted[0].old_values.clone().expect("the last values");
    assert_eq!(last["name"], "Plan B");
    assert_eq!(last["endPeriod"], "2026-12-01");
}

#[tokio::test]
async fn a_revoked_key_is_recorded_by_its_prefix_never_its_secret() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let admin = Some(team.admin.token.as_str());
    let res = app
        .gql(
            admin,
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
            json!({"i": {"organizationId": team.org, "name": "ci", "role": "VIEWER"}}),
        )
        .await;
    let secret = res.data()["createApiKey"]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let key = res.data()["createApiKey"]["apiKey"]["id"].clone();

    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            admin,
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
            json!({"id": key}),
        )
        .await;
    assert!(
        res.data()["revokeApiKey"]["revokedAt"].is_string(),
        "{:#}",
        res.body
    );
    let revoked = events_since(&app, before).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].action, "api_key.revoke");
    let last = revoked[0]
        .old_values
        .clone()
        .expect("the key's last values");
    assert_eq!(last["name"], "ci");
    assert_eq!(last["role"], "VIEWER");
    let prefix = last["prefix"].as_str().expect("a prefix");
    assert!(secret.starts_with(prefix), "{prefix} of {secret}");
    let everything: Vec<String> = app
        .audit_rows()
        .await
        .iter()
        .flat_map(|r| [r.old_values.clone(), r.new_values.clone()])
        .flatten()
        .map(|v: Value| v.to_string())
        .collect();
    assert!(
        everything.iter().all(|text| !text.contains(&secret)),
        "the secret reached the trail"
    );
}

#[tokio::test]
async fn locking_a_scenario_records_the_flag_alone() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let built = ModelBuilder::new("Plan")
        .scenario("Base")
        .build(&app, &team.owner, &team.org)
        .await;
    let before = app.audit_rows().await.len();
    let res = app
        .gql(
            Some(&team.admin.token),
            "mutation($id: ID!) { lockScenario(id: $id, locked: true) { isLocked } }",
            json!({"id": built.scenarios[0]}),
        )
        .await;
    assert_eq!(
        res.data()["lockScenario"]["isLocked"],
        true,
        "{:#}",
        res.body
    );
    let locked = events_since(&app, before).await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].action, "scenario.lock");
    assert_eq!(locked[0].entity_type, "Scenario");
    assert_eq!(locked[0].old_values, Some(json!({"isLocked": false})));
    assert_eq!(locked[0].new_values, Some(json!({"isLocked": true})));
}
