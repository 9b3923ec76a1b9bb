//! The live audit stream reads keyset pages and counts nothing: replaying a long history costs
//! one statement per page of 200, not two (page + `count(*)` over the whole history).

use std::time::Duration;

use finvision::{
    App,
    config::Config,
    db::{Db, PoolOptions},
};
use serde_json::json;

use crate::{
    helpers::{TestApp, TestUser},
    websocket::{next_json, send, ws_connect},
};

/// Events inserted behind the API into the long history.
const HISTORY: usize = 1000;

async fn serve_app(app: App) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.router()
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

/// Statements instance `app` sends to replay `org`'s history up to its last event over one
/// subscription (`connection_init` excluded).
async fn replay_statements(
    app: &App,
    addr: std::net::SocketAddr,
    user: &TestUser,
    org: &str,
    events: usize,
) -> u64 {
    let mut ws = ws_connect(addr).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", user.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let before = app.core().statement_count();
    send(&mut ws, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription($org: ID!) { auditEvents(organizationId: $org, after: \"0\") { sequence } }", "variables": {"org": org}}})).await;
    for i in 0..events {
        let message = next_json(&mut ws).await;
        assert_eq!(message["type"], "next", "event {i}: {message:#}");
    }
    app.core().statement_count() - before
}

#[tokio::test]
async fn replaying_a_long_history_reads_pages_without_counting() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let small = app.organization(&owner, "small").await;
    let big = app.organization(&owner, "big").await;
    let big_uuid = app
        .sql_texts("SELECT id::text AS t FROM organizations WHERE slug = 'big'")
        .await
        .remove(0);
    app.sql_exec(&format!(
        "INSERT INTO audit_events (organization_id, action, entity_type, hash) \
         SELECT '{big_uuid}', 'test.bulk', 'Test', '\\x00'::bytea FROM generate_series(1, {HISTORY})"
    ))
    .await;

    // A second instance with its own pool: its statement counter sees only the subscriber.
    let pool = Db::connect(
        &app.db.url,
        &PoolOptions {
            max_size: 4,
            connection_timeout: Duration::from_secs(3),
        },
    )
    .await
    .expect("pool");
    let second = App::new(Config::for_database(&app.db.url), pool).expect("instance");
    let addr = serve_app(second.clone()).await;

    let small_cost = replay_statements(&second, addr, &owner, &small, 1).await;
    let big_cost = replay_statements(&second, addr, &owner, &big, HISTORY + 1).await;
    let pages = (HISTORY + 1).div_ceil(200) as u64;
    eprintln!(
        "replay statements: 1 event {small_cost}, {} events {big_cost} ({pages} pages)",
        HISTORY + 1
    );
    // The extra cost of the long history is its pages (one statement each, plus at most the
    // empty read that ends the replay), not twice that.
    assert!(
        big_cost <= small_cost + pages + 1,
        "small {small_cost}, big {big_cost}, pages {pages}"
    );
}
