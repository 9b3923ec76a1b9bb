//! Hostile input: WebSocket parity. Oversized messages, too many operations in flight, the HTTP
//! guard and limits on every operation, anonymous sockets, and credentials that stop being valid
//! while the socket stays open.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{PASSWORD, TestApp},
    websocket::{Ws, close_code, next_json, send, serve, ws_connect},
};

const SUBSCRIBE: &str =
    "subscription($org: ID!) { auditEvents(organizationId: $org) { sequence action } }";

/// A socket past `connection_init` with `token` (anonymous without one).
async fn open(addr: std::net::SocketAddr, token: Option<&str>) -> Ws {
    let mut ws = ws_connect(addr).await;
    let payload = match token {
        Some(token) => json!({"authorization": format!("Bearer {token}")}),
        None => json!({}),
    };
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    ws
}

/// Run one query or mutation over the socket and return its first message.
async fn run(ws: &mut Ws, id: &str, query: &str, variables: Value) -> Value {
    send(
        ws,
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}),
    )
    .await;
    next_json(ws).await
}

/// The `extensions.code` of a message's first error (`next` with errors, or `error`).
fn code_of(message: &Value) -> String {
    let errors = match message["type"].as_str() {
        Some("error") => &message["payload"],
        _ => &message["payload"]["errors"],
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

#[tokio::test]
async fn a_message_over_the_limit_closes_the_socket_with_1009() {
    let app = TestApp::spawn().await;
    let addr = serve(&app).await;
    let mut ws = open(addr, None).await;
    // Just under the limit is an ordinary (invalid) operation.
    let padding = " ".repeat(900 * 1024);
    let reply = run(
        &mut ws,
        "1",
        &format!("{{ __typename {padding}}}"),
        json!({}),
    )
    .await;
    assert_eq!(reply["type"], "next", "{reply:#}");

    // 2 MiB in one frame: refused from the frame header.
    let started = Instant::now();
    let big = json!({"id": "2", "type": "subscribe", "payload": {"query": format!("{{ __typename {} }}", " ".repeat(2 * 1024 * 1024))}});
    // The server may close before the client has written every byte: a failed send is fine.
    let _ = ws.send(Message::text(big.to_string())).await;
    let (code, reason) = close_code(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1048576"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // The server is fine.
    let (status, _, _) = app
        .send(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn operations_in_flight_are_capped_per_connection() {
    let app = TestApp::spawn_with(|c| c.ws_max_operations = 2).await;
    let ann = app.user("ann").await;
    let org = app.organization(&ann, "acme").await;
    let addr = serve(&app).await;
    let mut ws = open(addr, Some(&ann.token)).await;

    for id in ["a", "b"] {
        send(
            &mut ws,
            json!({"id": id, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"org": org}}}),
        )
        .await;
    }
    let refused = run(&mut ws, "c", "{ me { id } }", json!({})).await;
    assert_eq!(refused["type"], "error", "{refused:#}");
    assert_eq!(refused["id"], "c");
    assert_eq!(code_of(&refused), "RATE_LIMITED");

    // Completing one makes room.
    send(&mut ws, json!({"id": "a", "type": "complete"})).await;
    let reply = run(&mut ws, "d", "{ me { id } }", json!({})).await;
    assert_eq!(reply["type"], "next", "{reply:#}");
    assert_eq!(reply["payload"]["data"]["me"]["id"], ann.id.as_str());
}

#[tokio::test]
async fn every_operation_passes_the_http_guard() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let addr = serve(&app).await;
    let mut ws = open(addr, Some(&ann.token)).await;

    // A 40-level fragment chain: refused before validation, as over HTTP.
    let mut doc = String::from("fragment F0 on Query { __typename }\n");
    for i in 1..=40 {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    doc.push_str("query { ...F40 }");
    let started = Instant::now();
    let reply = run(&mut ws, "1", &doc, json!({})).await;
    assert_eq!(reply["type"], "error", "{reply:#}");
    assert_eq!(code_of(&reply), "QUERY_TOO_COMPLEX");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Aliases over the HTTP limit (100).
    let aliases: String = (0..101).map(|i| format!("a{i}: __typename ")).collect();
    let reply = run(&mut ws, "2", &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(code_of(&reply), "QUERY_TOO_COMPLEX", "{reply:#}");

    // Depth over 12 outside introspection.
    let deep = "{ me { organizations { nodes { members { nodes { user { organizations { nodes { members { nodes { user { organizations { nodes { id } } } } } } } } } } } } } }";
    let reply = run(&mut ws, "3", deep, json!({})).await;
    assert_eq!(code_of(&reply), "QUERY_TOO_COMPLEX", "{reply:#}");
}

#[tokio::test]
async fn an_anonymous_socket_runs_only_what_anonymous_http_may() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let org = app.organization(&ann, "acme").await;
    let addr = serve(&app).await;
    let mut ws = open(addr, None).await;

    let reply = run(
        &mut ws,
        "1",
        "query($o: ID!) { organization(id: $o) { id } }",
        json!({"o": org}),
    )
    .await;
    assert_eq!(
        reply["payload"]["data"]["organization"],
        Value::Null,
        "{reply:#}"
    );
    assert_eq!(code_of(&reply), "UNAUTHENTICATED");
    let _ = next_json(&mut ws).await; // complete

    let reply = run(
        &mut ws,
        "2",
        "mutation { createOrganization(input: {name: \"x\", slug: \"x\"}) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code_of(&reply), "UNAUTHENTICATED", "{reply:#}");
    let _ = next_json(&mut ws).await;

    send(
        &mut ws,
        json!({"id": "3", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"org": org}}}),
    )
    .await;
    let reply = next_json(&mut ws).await;
    assert_eq!(code_of(&reply), "UNAUTHENTICATED", "{reply:#}");
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "complete", "id": "3"})
    );

    // What anonymous HTTP may do, it may do here: sign in.
    let reply = run(
        &mut ws,
        "4",
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({"e": ann.email, "p": PASSWORD}),
    )
    .await;
    assert!(
        reply["payload"]["data"]["login"]["token"].is_string(),
        "{reply:#}"
    );
    assert_eq!(app.count_rows("organizations").await, 1);
}

#[tokio::test]
async fn a_logged_out_token_cannot_run_another_operation() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let addr = serve(&app).await;
    let mut ws = open(addr, Some(&ann.token)).await;
    let reply = run(&mut ws, "1", "{ me { id } }", json!({})).await;
    assert_eq!(reply["payload"]["data"]["me"]["id"], ann.id.as_str());
    let _ = next_json(&mut ws).await;

    let res = app
        .gql(Some(&ann.token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(res.data()["logout"], true);

    send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "mutation { createOrganization(input: {name: \"x\", slug: \"x\"}) { id } }"}}),
    )
    .await;
    let (code, _) = close_code(&mut ws).await;
    assert_eq!(code, 4403);
    assert_eq!(app.count_rows("organizations").await, 0);
}

/// Subscribe on a fresh socket with a 1 s re-check, change the credential with `revoke`, and
/// expect 4403 within a few seconds although the client sends nothing.
async fn running_subscription_is_closed_when(
    app: &TestApp,
    token: &str,
    org: &str,
    revoke: impl AsyncFnOnce(),
) {
    let addr = serve(app).await;
    let mut ws = open(addr, Some(token)).await;
    send(
        &mut ws,
        json!({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"org": org}}}),
    )
    .await;
    revoke().await;
    let started = Instant::now();
    let (code, reason) = close_code(&mut ws).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn subscriptions_end_with_their_credential() {
    let app = TestApp::spawn_with(|c| c.ws_revalidate_secs = 1).await;
    let ann = app.user("ann").await;
    let org = app.organization(&ann, "acme").await;

    // Logout.
    running_subscription_is_closed_when(&app, &ann.token, &org, async || {
        let res = app
            .gql(Some(&ann.token), "mutation { logout }", json!({}))
            .await;
        assert_eq!(res.data()["logout"], true);
    })
    .await;

    // Expiry.
    let token = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": ann.email, "p": PASSWORD}),
        )
        .await
        .data()["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    running_subscription_is_closed_when(&app, &token, &org, async || {
        app.sql_exec("UPDATE sessions SET expires_at = now() - interval '1 second'")
            .await;
    })
    .await;

    // A revoked API key.
    let created = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": ann.email, "p": PASSWORD}),
        )
        .await;
    let owner_token = created.data()["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let key = app
        .gql(
            Some(&owner_token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }",
            json!({"input": {"organizationId": org, "name": "feed", "role": "ADMIN"}}),
        )
        .await;
    let secret = key.data()["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let key_id = key.data()["createApiKey"]["apiKey"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    running_subscription_is_closed_when(&app, &secret, &org, async || {
        let res = app
            .gql(
                Some(&owner_token),
                "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
                json!({"id": key_id}),
            )
            .await;
        assert!(res.data()["revokeApiKey"]["revokedAt"].is_string());
    })
    .await;

    // A superadmin flag taken away.
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let root_token = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": root.email, "p": PASSWORD}),
        )
        .await
        .data()["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    running_subscription_is_closed_when(&app, &root_token, &org, async || {
        app.sql_exec("UPDATE users SET is_superadmin = false").await;
    })
    .await;
}
