//! API keys: create, list and revoke them (ADMIN+), and use them as bearer tokens with exactly
//! their role in their one organization.

use std::net::SocketAddr;

use axum::http::StatusCode;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue as WsHeaderValue,
};

use crate::{
    factories::Team,
    helpers::{TestApp, TestUser},
};

const CREATE: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id name prefix role expiresAt revokedAt lastUsedAt createdBy { displayName } organization { slug } } } }";
const REVOKE: &str = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }";
const LIST: &str = "query($org: ID!, $all: Boolean) { node(id: $org) { ... on Organization { apiKeys(includeRevoked: $all) { totalCount nodes { id name role revokedAt } } } } }";

async fn create_key(
    app: &TestApp,
    by: &TestUser,
    org: &str,
    role: &str,
    extra: Value,
) -> crate::helpers::Gql {
    let mut input =
        json!({"organizationId": org, "name": format!("{role} integration"), "role": role});
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    app.gql(Some(&by.token), CREATE, json!({"input": input}))
        .await
}

/// Create a key and return (id, secret).
async fn key(app: &TestApp, by: &TestUser, org: &str, role: &str) -> (String, String) {
    let res = create_key(app, by, org, role, json!({})).await;
    let payload = &res.data()["createApiKey"];
    (
        payload["apiKey"]["id"].as_str().unwrap().to_owned(),
        payload["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn admins_create_keys_whose_secret_is_shown_once_and_stored_hashed() {
    let app = TestApp::spawn().await;
    let Team { org, admin, .. } = Team::new(&app).await;
    let res = create_key(&app, &admin, &org, "ANALYST", json!({})).await;
    let payload = &res.data()["createApiKey"];
    let secret = payload["secret"].as_str().unwrap();
    let key = &payload["apiKey"];
    assert!(secret.starts_with("fvk_"), "{secret}");
    // 256 bits in unpadded base64url: 43 characters after the prefix.
    assert_eq!(secret.len(), 4 + 43);
    assert_eq!(key["prefix"].as_str().unwrap(), &secret[..12]);
    assert_eq!(key["role"], "ANALYST");
    assert_eq!(key["createdBy"]["displayName"], "admin");
    assert_eq!(key["organization"]["slug"], "acme");
    assert_eq!(key["revokedAt"], Value::Null);

    // Only the SHA-256 is stored, and the secret appears nowhere in the database.
    let stored = app
        .sql_texts("SELECT encode(key_hash, 'hex') AS t FROM api_keys")
        .await;
    assert_eq!(stored, vec![hex::encode(Sha256::digest(secret.as_bytes()))]);
    let dump = app
        .sql_texts(
            "SELECT string_agg(t, ' ') AS t FROM (
                SELECT row_to_json(k)::text AS t FROM api_keys k
                UNION ALL SELECT row_to_json(a)::text FROM audit_events a) rows",
        )
        .await;
    assert!(!dump[0].contains(secret), "the secret was stored somewhere");
    assert!(
        !dump[0].contains(&secret[12..]),
        "part of the secret was stored"
    );
    let created = app
        .audit_rows()
        .await
        .into_iter()
        .find(|r| r.action == "api_key.create")
        .expect("an api_key.create event");
    assert_eq!(created.entity_type, "ApiKey");
    assert_eq!(created.new_values.unwrap()["role"], "ANALYST");
}

#[tokio::test]
async fn key_management_is_admin_only() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        owner,
        admin,
        analyst,
        viewer,
    } = Team::new(&app).await;
    for user in [&owner, &admin] {
        assert!(
            create_key(&app, user, &org, "VIEWER", json!({}))
                .await
                .data()["createApiKey"]["secret"]
                .is_string()
        );
    }
    for user in [&analyst, &viewer] {
        let res = create_key(&app, user, &org, "VIEWER", json!({})).await;
        assert_eq!(res.code(), "FORBIDDEN");
        let res = app
            .gql(Some(&user.token), LIST, json!({"org": org, "all": true}))
            .await;
        assert_eq!(res.code(), "FORBIDDEN");
        assert_eq!(res.body["data"]["node"]["apiKeys"], Value::Null);
    }
    let stranger = app.user("stranger").await;
    let res = create_key(&app, &stranger, &org, "VIEWER", json!({})).await;
    assert_eq!(res.code(), "NOT_FOUND");
    let res = create_key(&app, &owner, &org, "VIEWER", json!({})).await;
    let id = res.data()["createApiKey"]["apiKey"]["id"].clone();
    for user in [&analyst, &viewer] {
        let res = app.gql(Some(&user.token), REVOKE, json!({"id": id})).await;
        assert_eq!(res.code(), "FORBIDDEN");
    }
    let res = app
        .gql(Some(&stranger.token), REVOKE, json!({"id": id}))
        .await;
    assert_eq!(res.code(), "NOT_FOUND");
    let res = app.gql(None, REVOKE, json!({"id": id})).await;
    assert_eq!(res.code(), "UNAUTHENTICATED");

    // Never OWNER; the name and expiry are checked.
    let res = create_key(&app, &owner, &org, "OWNER", json!({})).await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    assert_eq!(res.field().as_deref(), Some("input.role"));
    let res = create_key(&app, &owner, &org, "VIEWER", json!({"name": " "})).await;
    assert_eq!(res.field().as_deref(), Some("input.name"));
    let res = create_key(
        &app,
        &owner,
        &org,
        "VIEWER",
        json!({"expiresAt": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(res.field().as_deref(), Some("input.expiresAt"));
}

#[tokio::test]
async fn revoking_is_idempotent_and_lists_hide_revoked_keys_by_default() {
    let app = TestApp::spawn().await;
    let Team { org, admin, .. } = Team::new(&app).await;
    let (first, first_secret) = key(&app, &admin, &org, "VIEWER").await;
    let (second, _) = key(&app, &admin, &org, "ANALYST").await;
    let res = app
        .gql(Some(&admin.token), REVOKE, json!({"id": first}))
        .await;
    let revoked_at = res.data()["revokeApiKey"]["revokedAt"].clone();
    assert!(revoked_at.is_string());
    let again = app
        .gql(Some(&admin.token), REVOKE, json!({"id": first}))
        .await;
    assert_eq!(again.data()["revokeApiKey"]["revokedAt"], revoked_at);
    let revocations = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "api_key.revoke")
        .count();
    assert_eq!(revocations, 1, "a second revocation writes no event");

    let res = app.gql(Some(&admin.token), LIST, json!({"org": org})).await;
    let keys = &res.data()["node"]["apiKeys"];
    assert_eq!(keys["totalCount"], 1);
    assert_eq!(keys["nodes"][0]["id"], second.as_str());
    let res = app
        .gql(Some(&admin.token), LIST, json!({"org": org, "all": true}))
        .await;
    assert_eq!(res.data()["node"]["apiKeys"]["totalCount"], 2);

    // The revoked key is refused with 401.
    let res = app
        .gql(Some(&first_secret), "{ me { id } }", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_key_acts_with_exactly_its_role_in_its_organization_only() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let other_owner = app.user("other").await;
    let other_org = app.organization(&other_owner, "globex").await;
    let model_input = |org: &str| json!({"input": {"organizationId": org, "name": "Plan", "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}});
    let create_model = "mutation($input: CreateModelInput!) { createModel(input: $input) { id createdBy { id } } }";
    let other_model = app
        .gql(
            Some(&other_owner.token),
            create_model,
            model_input(&other_org),
        )
        .await
        .data()["createModel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, viewer_key) = key(&app, &owner, &org, "VIEWER").await;
    let (analyst_key_id, analyst_key) = key(&app, &owner, &org, "ANALYST").await;

    // A VIEWER key reads but cannot write.
    let res = app
        .gql(Some(&viewer_key), create_model, model_input(&org))
        .await;
    assert_eq!(res.code(), "FORBIDDEN");
    let res = app
        .gql(
            Some(&viewer_key),
            "query($id: ID!) { me { id } organizations { nodes { slug viewerRole } } node(id: $id) { id } }",
            json!({"id": org}),
        )
        .await;
    let data = res.data();
    assert_eq!(data["me"], Value::Null, "a key is nobody");
    assert_eq!(
        data["organizations"]["nodes"],
        json!([{"slug": "acme", "viewerRole": "VIEWER"}])
    );
    assert_eq!(data["node"]["id"], org.as_str());

    // An ANALYST key writes, and the audit event's actor is the key.
    let res = app
        .gql(Some(&analyst_key), create_model, model_input(&org))
        .await;
    assert_eq!(res.data()["createModel"]["createdBy"], Value::Null);
    let res = app
        .gql(
            Some(&owner.token),
            "query($org: ID!) { auditEvents(organizationId: $org, last: 1) { nodes { action actor { __typename ... on ApiKey { id role } } } } }",
            json!({"org": org}),
        )
        .await;
    assert_eq!(
        res.data()["auditEvents"]["nodes"][0],
        json!({"action": "model.create", "actor": {"__typename": "ApiKey", "id": analyst_key_id, "role": "ANALYST"}})
    );

    // Nothing of another organization exists for it.
    let res = app
        .gql(
            Some(&analyst_key),
            "query($org: ID!, $model: ID!) { org: node(id: $org) { id } model(id: $model) { id } }",
            json!({"org": other_org, "model": other_model}),
        )
        .await;
    assert_eq!(res.data()["org"], Value::Null);
    assert_eq!(res.data()["model"], Value::Null);
    let res = app
        .gql(Some(&analyst_key), create_model, model_input(&other_org))
        .await;
    assert_eq!(res.code(), "NOT_FOUND");
    let res = app
        .gql(
            Some(&analyst_key),
            "query($id: ID!) { node(id: $id) { ... on User { id } } }",
            json!({"id": other_owner.id}),
        )
        .await;
    assert_eq!(res.data()["node"], Value::Null);

    // An ANALYST key cannot read keys or history, nor manage keys.
    let res = app
        .gql(
            Some(&analyst_key),
            "query($org: ID!) { auditEvents(organizationId: $org) { totalCount } }",
            json!({"org": org}),
        )
        .await;
    assert_eq!(res.code(), "FORBIDDEN");
}

#[tokio::test]
async fn keys_cannot_use_account_operations_or_mint_keys() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let (_, admin_key) = key(&app, &owner, &org, "ADMIN").await;
    for (query, variables) in [
        (
            "mutation { login(email: \"owner@example.com\", password: \"correct horse battery\") { token } }",
            json!({}),
        ),
        (
            "mutation { register(input: {email: \"x@example.com\", password: \"correct horse battery\", displayName: \"x\"}) { token } }",
            json!({}),
        ),
        ("mutation { logout }", json!({})),
        ("mutation { logoutEverywhere }", json!({})),
        (
            "mutation { changePassword(input: {currentPassword: \"a\", newPassword: \"bbbbbbbbbb\"}) }",
            json!({}),
        ),
        (
            "mutation { createOrganization(input: {name: \"x\", slug: \"xyz\"}) { id } }",
            json!({}),
        ),
        (
            CREATE,
            json!({"input": {"organizationId": org, "name": "child", "role": "VIEWER"}}),
        ),
    ] {
        let res = app.gql(Some(&admin_key), query, variables).await;
        assert_eq!(res.code(), "FORBIDDEN", "{query}: {:#}", res.body);
    }
    // An ADMIN key still reads the keys and the history, and may revoke a key.
    let res = app.gql(Some(&admin_key), LIST, json!({"org": org})).await;
    assert_eq!(res.data()["node"]["apiKeys"]["totalCount"], 1);
}

#[tokio::test]
async fn expired_keys_are_refused_and_use_is_recorded_after_a_flush() {
    // The expiry is moved in SQL below, in place of waiting for it (see `spawn_uncached`; a
    // cached key meeting its real expiry: `caller_cache.rs`).
    let app = TestApp::spawn_uncached().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let (id, secret) = key(&app, &owner, &org, "VIEWER").await;
    let res = app
        .gql(Some(&secret), "{ organizations { totalCount } }", json!({}))
        .await;
    assert_eq!(res.data()["organizations"]["totalCount"], 1);

    // No write per request: nothing until the flush.
    let last_used = "SELECT coalesce(last_used_at::text, 'never') AS t FROM api_keys";
    assert_eq!(app.sql_texts(last_used).await, vec!["never"]);
    let flushed = finvision::domain::auth::api_keys::flush_usage(app.app.core())
        .await
        .expect("flush");
    // The flush writes the sessions' uses too (the owner's, here): at least this key.
    assert!(flushed >= 1, "{flushed}");
    assert_ne!(app.sql_texts(last_used).await, vec!["never"]);
    let res = app
        .gql(
            Some(&owner.token),
            "query($id: ID!) { node(id: $id) { ... on ApiKey { lastUsedAt } } }",
            json!({"id": id}),
        )
        .await;
    assert!(res.data()["node"]["lastUsedAt"].is_string());
    // Nothing is noted twice: only the owner's session, used for that query, is new since.
    assert_eq!(
        finvision::domain::auth::api_keys::flush_usage(app.app.core())
            .await
            .expect("flush"),
        1
    );

    // Expiry is checked on every request.
    app.sql_exec("UPDATE api_keys SET expires_at = now() - interval '1 second'")
        .await;
    let res = app
        .gql(Some(&secret), "{ organizations { totalCount } }", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code(), "UNAUTHENTICATED");
    let res = app
        .gql(Some("fvk_forged"), "{ me { id } }", json!({}))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn node_shows_keys_to_admins_only() {
    let app = TestApp::spawn().await;
    let Team {
        org,
        owner,
        admin,
        analyst,
        viewer,
    } = Team::new(&app).await;
    let (id, _) = key(&app, &owner, &org, "VIEWER").await;
    let query = "query($id: ID!) { node(id: $id) { ... on ApiKey { name } } }";
    for user in [&owner, &admin] {
        let res = app.gql(Some(&user.token), query, json!({"id": id})).await;
        assert_eq!(res.data()["node"]["name"], "VIEWER integration");
    }
    let stranger = app.user("stranger").await;
    for user in [&analyst, &viewer, &stranger] {
        let res = app.gql(Some(&user.token), query, json!({"id": id})).await;
        assert_eq!(res.data()["node"], Value::Null);
    }
}

#[tokio::test]
async fn websocket_connections_authenticate_with_a_key() {
    let app = TestApp::spawn().await;
    let Team { org, owner, .. } = Team::new(&app).await;
    let (_, secret) = key(&app, &owner, &org, "VIEWER").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .expect("ws request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        WsHeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {secret}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let ack = read_json(&mut ws).await;
    assert_eq!(ack["type"], "connection_ack");
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } organizations { nodes { slug viewerRole } } }"}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let next = read_json(&mut ws).await;
    assert_eq!(
        next["payload"]["data"],
        json!({"me": null, "organizations": {"nodes": [{"slug": "acme", "viewerRole": "VIEWER"}]}}),
        "{next:#}"
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn read_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("open")
            .expect("websocket");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("json");
        }
    }
}
