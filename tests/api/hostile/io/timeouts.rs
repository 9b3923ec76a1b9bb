//! FV_REQUEST_TIMEOUT_SECS answers a slow request with 503 `UNAVAILABLE` (WebSockets outlive it
//! after their upgrade); FV_STATEMENT_TIMEOUT_MS cancels a slow statement on every pooled
//! connection, reported without its SQL.

use std::time::Duration;

use axum::http::{Request, StatusCode, header};
use diesel_async::RunQueryDsl;
use finvision::error::AppError;
use serde_json::json;

use super::{Polled, multipart_head, multipart_request, operations, send, team};
use crate::{
    helpers::TestApp,
    websocket::{next_json, send as ws_send, serve, ws_connect},
};

#[tokio::test]
async fn a_request_slower_than_the_timeout_is_answered_503_unavailable() {
    let app = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let (_, model, _, analyst) = team(&app, "acme").await;

    // A JSON body and an upload whose client stalls halfway.
    let json_body = Polled::default().stalled(br#"{"query": "{ me { id } "#.to_vec());
    let json_request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", analyst.token))
        .body(json_body)
        .expect("request");
    let head = multipart_head(
        &operations(&model),
        &json!({"0": ["variables.input.file"]}),
        &["0"],
    );
    let upload_request = multipart_request(Some(&analyst.token), Polled::default().stalled(head));
    for request in [json_request, upload_request] {
        let res = send(&app, request).await;
        assert_eq!(
            res.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{:#}",
            res.body
        );
        assert_eq!(res.code(), "UNAVAILABLE");
    }
    assert_eq!(app.count_rows("model_files").await, 0);
    // Quick requests are untouched.
    let res = app
        .gql(Some(&analyst.token), "{ me { id } }", json!({}))
        .await;
    res.data();
}

#[tokio::test]
async fn websockets_outlive_the_request_timeout() {
    let app = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let addr = serve(&app).await;
    let mut ws = ws_connect(addr).await;
    ws_send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", owner.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws_send(&mut ws, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription($org: ID!) { auditEvents(organizationId: $org, after: \"0\") { action } }", "variables": {"org": org}}})).await;
    assert_eq!(
        next_json(&mut ws).await["payload"]["data"]["auditEvents"]["action"],
        "organization.create"
    );
    // Past the request timeout on purpose: the connection must still deliver. This sleep is
    // the thing under test (time passing), not a wait for something: the timeout is whole
    // seconds and 1 s is its smallest value.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.gql(
        Some(&owner.token),
        "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
        json!({"input": {"organizationId": org, "name": "Plan", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
    )
    .await
    .data();
    let message = next_json(&mut ws).await;
    assert_eq!(message["type"], "next", "{message:#}");
    assert_eq!(
        message["payload"]["data"]["auditEvents"]["action"],
        "model.create"
    );
}

#[tokio::test]
async fn the_statement_timeout_cancels_a_slow_statement_without_revealing_it() {
    let app = TestApp::spawn_with(|c| c.statement_timeout_ms = 50).await;
    let mut conn = app.pool.conn().await.expect("a pooled connection");
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement_timeout: String,
    }
    let setting: Setting = diesel::sql_query("SHOW statement_timeout")
        .get_result(&mut conn)
        .await
        .expect("show");
    assert_eq!(setting.statement_timeout, "50ms");
    let err = diesel::sql_query("SELECT pg_sleep(1)")
        .execute(&mut conn)
        .await
        .expect_err("cancelled by the statement timeout");
    let err = AppError::from(err);
    assert!(matches!(err, AppError::Unavailable), "{err:?}");
    let message = err.to_string().to_lowercase();
    for detail in ["select", "pg_sleep", "statement", "sql"] {
        assert!(!message.contains(detail), "{message}");
    }
    drop(conn);
    // The connection is still usable afterwards, and the API answers.
    let owner = app.user("owner").await;
    app.gql(Some(&owner.token), "{ me { id } }", json!({}))
        .await
        .data();
}
