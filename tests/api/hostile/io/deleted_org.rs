//! Nothing of a soft-deleted organization is reachable: its files, its objects by `node(id)` and
//! by their own root fields, its history, its API keys, and writes to its models; for its former
//! members and for superadmins alike.

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};

use super::{send, team, upload};
use crate::helpers::TestApp;

/// Run `query` as `token` and return the response body.
async fn query(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.gql(Some(token), query, variables).await.body
}

#[tokio::test]
async fn nothing_of_a_deleted_organization_is_reachable() {
    let app = TestApp::spawn().await;
    let (org, model, owner, analyst) = team(&app, "gone").await;
    let admin = app.user("root").await;
    app.make_superadmin(&admin.email).await;
    let scenario = app
        .gql(
            Some(&owner.token),
            "mutation($input: CreateScenarioInput!) { createScenario(input: $input) { id } }",
            json!({"input": {"modelId": model, "name": "Base", "kind": "BASE"}}),
        )
        .await
        .data()["createScenario"]["id"]
        .clone();
    let metric = app
        .gql(
            Some(&owner.token),
            "mutation($input: DefineMetricInput!) { defineMetric(input: $input) { id } }",
            json!({"input": {"modelId": model, "key": "revenue", "name": "Revenue", "unit": "CURRENCY", "kind": "INPUT"}}),
        )
        .await
        .data()["defineMetric"]["id"]
        .clone();
    let file = upload(&app, &analyst, &model, b"a,b\n1,2\n").await;
    let key = app
        .gql(
            Some(&owner.token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }",
            json!({"input": {"organizationId": org, "name": "etl", "role": "ADMIN"}}),
        )
        .await
        .data()["createApiKey"]
        .clone();
    let event = app
        .gql(
            Some(&owner.token),
            "query($org: ID!) { auditEvents(organizationId: $org, last: 1) { nodes { id } } }",
            json!({"org": org}),
        )
        .await
        .data()["auditEvents"]["nodes"][0]["id"]
        .clone();
    let url = file["downloadUrl"].as_str().expect("url").to_owned();
    let ids = [
        model.clone().into(),
        scenario,
        metric,
        file["id"].clone(),
        key["apiKey"]["id"].clone(),
        event,
    ];
    // Reachable while the organization lives (the superadmin too).
    for token in [&owner.token, &admin.token] {
        let nodes = query(
            &app,
            token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": ids}),
        )
        .await;
        assert!(
            nodes["data"]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .all(|n| !n.is_null()),
            "{nodes:#}"
        );
    }

    let res = app
        .gql(
            Some(&owner.token),
            "mutation($id: ID!) { deleteOrganization(id: $id) }",
            json!({"id": org}),
        )
        .await;
    assert_eq!(res.data()["deleteOrganization"], true);

    for (who, token) in [
        ("owner", &owner.token),
        ("analyst", &analyst.token),
        ("superadmin", &admin.token),
    ] {
        let download = Request::get(&url)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        let res = send(&app, download).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{who}: {:#}", res.body);

        let nodes = query(
            &app,
            token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({"ids": ids}),
        )
        .await;
        assert_eq!(
            nodes["data"]["nodes"],
            json!([null, null, null, null, null, null]),
            "{who}: {nodes:#}"
        );
        let roots = query(
            &app,
            token,
            "query($m: ID!, $s: ID!) { model(id: $m) { id } scenario(id: $s) { id } }",
            json!({"m": model, "s": ids[1]}),
        )
        .await;
        assert!(
            roots["data"]["model"].is_null() && roots["data"]["scenario"].is_null(),
            "{who}: {roots:#}"
        );
        let history = query(
            &app,
            token,
            "query($org: ID!) { auditEvents(organizationId: $org, first: 5) { nodes { id } } }",
            json!({"org": org}),
        )
        .await;
        assert!(
            history["data"]["auditEvents"].is_null(),
            "{who}: {history:#}"
        );
        // Writes to its model: the model does not exist.
        let write = app
            .gql(
                Some(token),
                "mutation($input: DefineMetricInput!) { defineMetric(input: $input) { id } }",
                json!({"input": {"modelId": model, "key": "cost", "name": "Cost", "unit": "CURRENCY", "kind": "INPUT"}}),
            )
            .await;
        assert_eq!(write.code(), "NOT_FOUND", "{who}: {:#}", write.body);
        let res = send(
            &app,
            super::multipart_request(Some(token), Body::from(super::upload_body(&model, b"x"))),
        )
        .await;
        assert_eq!(res.code(), "NOT_FOUND", "{who}: {:#}", res.body);
    }
    // Its API key no longer authenticates.
    let secret = key["secret"].as_str().expect("secret");
    let res = app.gql(Some(secret), "{ me { id } }", json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{:#}", res.body);
    assert_eq!(app.count_rows("model_files").await, 1);
}

/// Writes reach the domain past the API's guards only through `caller_role`: a former member's
/// membership row survives the organization, and must not count.
#[tokio::test]
async fn a_former_members_role_does_not_outlive_the_organization() {
    let app = TestApp::spawn().await;
    let (_, model, owner, _) = team(&app, "gone").await;
    let file = upload(&app, &owner, &model, b"a\n").await;
    app.sql_exec("UPDATE organizations SET deleted_at = now()")
        .await;
    assert_eq!(app.count_rows("memberships").await, 2, "rows stay");
    let download = Request::get(file["downloadUrl"].as_str().expect("url"))
        .header(header::AUTHORIZATION, format!("Bearer {}", owner.token))
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, download).await.status, StatusCode::NOT_FOUND);
}
