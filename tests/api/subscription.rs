//! `Subscription.auditEvents` end to end: live delivery, resuming with `after`, two server
//! instances on one database, a killed LISTEN connection, revocation, and a real third-party
//! client (the `graphql-ws` npm package).

use std::{net::SocketAddr, process::Stdio, time::Duration};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use finvision::{
    App,
    config::Config,
    db::{Db, PoolOptions},
};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, eventually},
    websocket::{Ws, close_code, next_json, send, serve, ws_connect},
};

const SUBSCRIBE: &str = "subscription($org: ID!, $after: String, $filter: AuditEventFilter) { auditEvents(organizationId: $org, after: $after, filter: $filter) { sequence action entityType } }";

async fn connect_admin(addr: SocketAddr, user: &TestUser) -> Ws {
    let mut ws = ws_connect(addr).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", user.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws
}

async fn subscribe(ws: &mut Ws, id: &str, org: &str, after: Option<&str>) {
    send(ws, json!({"id": id, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"org": org, "after": after}}})).await;
}

/// The next `next` payload's event (skipping nothing else: the server sends nothing else).
async fn next_event(ws: &mut Ws) -> Value {
    let message = next_json(ws).await;
    assert_eq!(message["type"], "next", "{message:#}");
    assert!(message["payload"]["errors"].is_null(), "{message:#}");
    message["payload"]["data"]["auditEvents"].clone()
}

/// Write `n` audit events in the organization (one model each).
async fn write_events(app: &TestApp, user: &TestUser, org: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let input = json!({"organizationId": org, "name": format!("{prefix} {i}"), "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"});
        app.gql(
            Some(&user.token),
            "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
            json!({"i": input}),
        )
        .await
        .data();
    }
}

/// Wait until an instance's LISTEN connection is up.
pub async fn wait_listening(app: &App) {
    eventually("the audit listener connects", || async {
        app.core().audit_stream().is_listening()
    })
    .await;
}

/// The next event whose action is `action`, skipping earlier ones (replays start at 0).
async fn next_event_with(ws: &mut Ws, action: &str) -> Value {
    loop {
        let event = next_event(ws).await;
        if event["action"] == action {
            return event;
        }
    }
}

/// A second server instance over the same database.
async fn second_instance(app: &TestApp) -> App {
    let config = Config::for_database(&app.db.app_url);
    let pool = Db::connect(
        &app.db.app_url,
        &PoolOptions {
            max_size: 4,
            connection_timeout: Duration::from_secs(3),
        },
    )
    .await
    .expect("pool");
    App::new(config, pool).expect("second instance")
}

async fn serve_app(app: App) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

#[tokio::test]
async fn live_events_reach_subscribers_on_another_instance() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let second = second_instance(&app).await;
    wait_listening(&second).await;
    let b = serve_app(second).await;

    // Replay from 0 (deterministic whatever the timing), then live.
    let mut ws = connect_admin(b, &owner).await;
    subscribe(&mut ws, "s1", &org, Some("0")).await;
    assert_eq!(next_event(&mut ws).await["action"], "organization.create");
    // The mutation goes through instance A (the test app's router).
    write_events(&app, &owner, &org, "Live", 2).await;
    let first = next_event(&mut ws).await;
    let second = next_event(&mut ws).await;
    assert_eq!(
        (first["action"].as_str(), first["entityType"].as_str()),
        (Some("model.create"), Some("FinancialModel"))
    );
    let (a, b): (i64, i64) = (
        first["sequence"].as_str().unwrap().parse().unwrap(),
        second["sequence"].as_str().unwrap().parse().unwrap(),
    );
    assert!(b > a);

    // A duplicate operation id while the first is active is a protocol error.
    subscribe(&mut ws, "s1", &org, None).await;
    assert_eq!(close_code(&mut ws).await.0, 4409);
}

#[tokio::test]
async fn a_reconnecting_subscriber_resumes_with_after_and_misses_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let addr = serve(&app).await;

    let mut ws = connect_admin(addr, &owner).await;
    subscribe(&mut ws, "1", &org, Some("0")).await;
    // Replay from the start: the organization's creation.
    let created = next_event(&mut ws).await;
    assert_eq!(created["action"], "organization.create");
    let last_seen = created["sequence"].as_str().unwrap().to_owned();
    drop(ws);

    // 50 events while disconnected.
    write_events(&app, &owner, &org, "Offline", 50).await;

    let mut ws = connect_admin(addr, &owner).await;
    subscribe(&mut ws, "2", &org, Some(&last_seen)).await;
    let mut sequences = Vec::new();
    for _ in 0..50 {
        let event = next_event(&mut ws).await;
        assert_eq!(event["action"], "model.create");
        sequences.push(event["sequence"].as_str().unwrap().parse::<i64>().unwrap());
    }
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "in order: {sequences:?}"
    );
    assert!(sequences[0] > last_seen.parse::<i64>().unwrap());
    // Then live, with nothing repeated at the seam.
    write_events(&app, &owner, &org, "Online", 1).await;
    let live = next_event(&mut ws).await;
    assert!(
        live["sequence"].as_str().unwrap().parse::<i64>().unwrap() > *sequences.last().unwrap()
    );
    // No duplicate: the next message is the next event written, nothing repeated before it.
    write_events(&app, &owner, &org, "Marker", 1).await;
    let marker = next_event(&mut ws).await;
    assert!(
        marker["sequence"].as_str().unwrap().parse::<i64>().unwrap()
            > live["sequence"].as_str().unwrap().parse::<i64>().unwrap(),
        "no duplicate: {marker:#}"
    );
}

#[tokio::test]
async fn a_killed_listen_connection_loses_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let addr = serve(&app).await;
    wait_listening(&app.app).await;
    let mut ws = connect_admin(addr, &owner).await;
    subscribe(&mut ws, "1", &org, Some("0")).await;
    assert_eq!(next_event(&mut ws).await["action"], "organization.create");

    // Kill the LISTEN connection (and the pool's: they reconnect), then write while it is down.
    app.sql_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").await;
    for attempt in 0.. {
        // The pool hands out a killed connection once; retry until the database is back.
        let res = app
            .gql(Some(&owner.token), "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }", json!({"i": {"organizationId": org, "name": "During", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}))
            .await;
        if res.errors().is_empty() {
            break;
        }
        assert!(attempt < 10, "{:#}", res.body);
    }
    write_events(&app, &owner, &org, "After", 3).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(
            next_event(&mut ws).await["action"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(names, ["model.create"; 4]);
}

#[tokio::test]
async fn only_admins_subscribe_and_revocation_ends_the_stream() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let admin = app.user("admin").await;
    let viewer = app.user("viewer").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    app.add_member(&owner, &org, &viewer, "VIEWER").await;
    let addr = serve(&app).await;
    wait_listening(&app.app).await;

    let mut ws = connect_admin(addr, &viewer).await;
    subscribe(&mut ws, "v", &org, None).await;
    // Refused before its stream starts: a result with the error at its path, then `complete`
    // (as graphql-ws's reference server answers a subscription whose source stream fails;
    // `error` messages are for requests that never execute).
    let refused = next_json(&mut ws).await;
    assert_eq!(refused["type"], "next", "{refused:#}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        refused["payload"]["errors"][0]["path"],
        json!(["auditEvents"])
    );
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "complete", "id": "v"})
    );

    let mut ws = connect_admin(addr, &admin).await;
    subscribe(&mut ws, "a", &org, Some("0")).await;
    write_events(&app, &owner, &org, "Seen", 1).await;
    next_event_with(&mut ws, "model.create").await;
    // Demoted: the next event is not delivered; the stream ends with FORBIDDEN.
    let demote = "mutation($i: UpdateMemberRoleInput!) { updateMemberRole(input: $i) { role } }";
    app.gql(
        Some(&owner.token),
        demote,
        json!({"i": {"organizationId": org, "userId": admin.id, "role": "VIEWER"}}),
    )
    .await
    .data();
    let ended = next_json(&mut ws).await;
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{ended:#}"
    );
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "complete", "id": "a"})
    );
}

#[tokio::test]
async fn the_graphql_ws_npm_client_receives_the_stream() {
    crate::helpers::require_node();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    crate::helpers::npm_ci(std::path::Path::new(dir), &["graphql-ws", "ws"]);
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    write_events(&app, &owner, &org, "Before", 2).await;
    let addr = serve(&app).await;

    let mut child = tokio::process::Command::new("node")
        .args([
            "subscribe.mjs",
            &format!("ws://{addr}/graphql/ws"),
            &owner.token,
            &org,
            "0",
            "5",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(40), lines.next_line())
            .await
            .expect("node prints within 40 s")
            .expect("read node's output")
    };
    assert_eq!(next_line().await.as_deref(), Some(r#"{"ready":true}"#));
    // Replayed: organization.create and two models. Once they are in, the subscription is live
    // (the replay ends where the live stream starts): then two live events.
    let mut events: Vec<Value> = Vec::new();
    while events.len() < 3 {
        let line = next_line().await.expect("a replayed event");
        events.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("json line: {line}")));
    }
    write_events(&app, &owner, &org, "Live", 2).await;
    while let Some(line) = next_line().await {
        events.push(serde_json::from_str(&line).unwrap_or_else(|_| panic!("json line: {line}")));
    }
    let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .expect("node finishes")
        .expect("status");
    let mut errors = String::new();
    stderr.read_to_string(&mut errors).await.expect("stderr");
    assert!(status.success(), "node failed: {events:?} {errors}");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "organization.create",
            "model.create",
            "model.create",
            "model.create",
            "model.create"
        ]
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]));
}
