//! Hostile input: abuse. Sign-in and registration limits under concurrency, client addresses
//! (IPv6 /64 buckets, trusted proxies), API keys kept out of member and key management, private
//! user fields, idle sessions; the text caps are in `input_caps`.

mod input_caps;

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Request, header},
};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Gql, PASSWORD, TestApp, TestUser};

const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";
const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }";
const CHANGE_PASSWORD: &str =
    "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";

/// POST `body` to `/graphql` from `peer`, with optional token and extra headers.
async fn post_from(
    app: &TestApp,
    peer: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Value,
) -> Gql {
    let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::from(body.to_string())).expect("request");
    let peer: SocketAddr = peer.parse().expect("socket address");
    request.extensions_mut().insert(ConnectInfo(peer));
    let (status, _, bytes) = app.send(request).await;
    Gql {
        status,
        body: serde_json::from_slice(&bytes).expect("json"),
    }
}

fn register_body(email: &str) -> Value {
    json!({"query": REGISTER, "variables": {"input": {"email": email, "password": PASSWORD, "displayName": "x"}}})
}

async fn login(app: &TestApp, email: &str, password: &str) -> Gql {
    app.gql(None, LOGIN, json!({"email": email, "password": password}))
        .await
}

#[tokio::test]
async fn the_sign_in_limit_is_a_setting() {
    let app = TestApp::spawn_with(|c| c.login_failures_per_account = 3).await;
    let ann = app.user("ann").await;
    let hasher = app.app.core().hasher();
    let before = hasher.verifications();
    let codes: Vec<String> = join_all((0..8).map(|_| login(&app, &ann.email, "wrong password")))
        .await
        .iter()
        .map(Gql::code)
        .collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "UNAUTHENTICATED").count(),
        3,
        "{codes:?}"
    );
    assert_eq!(hasher.verifications() - before, 3);
    assert_eq!(
        login(&app, &ann.email, PASSWORD).await.code(),
        "RATE_LIMITED"
    );
}

/// The addresses of the `user.register` audit rows, oldest first.
async fn register_addresses(app: &TestApp) -> Vec<String> {
    app.sql_texts(
        "SELECT host(ip_address) AS t FROM audit_events WHERE action = 'user.register' ORDER BY id",
    )
    .await
}

#[tokio::test]
async fn forty_parallel_wrong_passwords_verify_at_most_ten() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let hasher = app.app.core().hasher();
    let before = hasher.verifications();
    let attempts = join_all((0..40).map(|_| login(&app, &ann.email, "wrong password"))).await;
    let codes: Vec<String> = attempts.iter().map(Gql::code).collect();
    let refused = codes.iter().filter(|c| *c == "UNAUTHENTICATED").count();
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    assert_eq!((refused, limited), (10, 30), "{codes:?}");
    let verified = hasher.verifications() - before;
    assert!(
        verified <= 10,
        "{verified} verifications for 40 parallel attempts"
    );
    // The account is locked: the right password is refused without being verified.
    assert_eq!(
        login(&app, &ann.email, PASSWORD).await.code(),
        "RATE_LIMITED"
    );
    assert_eq!(hasher.verifications() - before, verified);
    let failures = app
        .sql_texts(
            "SELECT count(*)::text AS t FROM audit_events WHERE action = 'auth.login_failed'",
        )
        .await;
    assert_eq!(failures, ["10"]);
}

#[tokio::test]
async fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
    let app = TestApp::spawn_with(|c| c.register_per_address_per_hour = 2).await;
    let same_64 = ["[2001:db8:1:2::1]:1000", "[2001:db8:1:2:ffff::2]:1000"];
    for (i, peer) in same_64.iter().enumerate() {
        let res = post_from(
            &app,
            peer,
            None,
            &[],
            register_body(&format!("u{i}@example.com")),
        )
        .await;
        res.data();
    }
    let res = post_from(
        &app,
        "[2001:db8:1:2:abcd::3]:1000",
        None,
        &[],
        register_body("u3@example.com"),
    )
    .await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    // The next /64, and IPv4, are other buckets; an IPv4-mapped address is its IPv4 address.
    post_from(
        &app,
        "[2001:db8:1:3::1]:1000",
        None,
        &[],
        register_body("u4@example.com"),
    )
    .await
    .data();
    post_from(
        &app,
        "[::ffff:192.0.2.1]:1000",
        None,
        &[],
        register_body("u5@example.com"),
    )
    .await
    .data();
    // The audit rows keep the full address; only the limit groups them.
    assert_eq!(
        register_addresses(&app).await,
        [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::2",
            "2001:db8:1:3::1",
            "192.0.2.1"
        ]
    );
    assert_eq!(app.count_rows("users").await, 4);
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        c.register_per_address_per_hour = 1;
    })
    .await;
    let xff = |v: &'static str| [("x-forwarded-for", v)];
    // Through the proxy: the right-most address the proxy did not add itself.
    post_from(
        &app,
        "10.0.0.2:80",
        None,
        &xff("203.0.113.50, 198.51.100.1, 10.0.0.9"),
        register_body("a@example.com"),
    )
    .await
    .data();
    // A client forging the left-most entry is still 198.51.100.1: limited.
    let res = post_from(
        &app,
        "10.0.0.2:80",
        None,
        &xff("1.2.3.4, 198.51.100.1"),
        register_body("b@example.com"),
    )
    .await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    // From an untrusted peer the header is ignored: the peer is the client.
    post_from(
        &app,
        "192.0.2.9:80",
        None,
        &xff("198.51.100.77"),
        register_body("c@example.com"),
    )
    .await
    .data();
    let res = post_from(
        &app,
        "192.0.2.9:80",
        None,
        &xff("198.51.100.78"),
        register_body("d@example.com"),
    )
    .await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    assert_eq!(
        register_addresses(&app).await,
        ["198.51.100.1", "192.0.2.9"]
    );
}

#[tokio::test]
async fn aliased_and_batched_registers_hash_at_most_the_limit() {
    let app = TestApp::spawn().await;
    let limit = app.app.config().register_per_address_per_hour;
    let hasher = app.app.core().hasher();
    let before = hasher.hashes();
    let batch: Vec<Value> = (0..10)
        .map(|b| {
            let fields: String = (0..100)
                .map(|a| format!("r{a}: register(input: {{email: \"u{b}x{a}@example.com\", password: \"{PASSWORD}\", displayName: \"x\"}}) {{ token }} "))
                .collect();
            json!({"query": format!("mutation {{ {fields} }}")})
        })
        .collect();
    let res = post_from(&app, "198.51.100.20:1000", None, &[], Value::Array(batch)).await;
    assert!(res.status.is_success(), "{:#}", res.body);
    let hashed = hasher.hashes() - before;
    assert!(
        hashed <= u64::from(limit),
        "{hashed} hashes for 1,000 aliased registers"
    );
    assert_eq!(app.count_rows("users").await, i64::from(limit));
    assert!(res.body.to_string().contains("RATE_LIMITED"));
}

#[tokio::test]
async fn a_wrong_current_password_counts_towards_the_account_lock() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let change = |current: &'static str| {
        app.gql(
            Some(&ann.token),
            CHANGE_PASSWORD,
            json!({"input": {"currentPassword": current, "newPassword": "another long password"}}),
        )
    };
    for _ in 0..5 {
        assert_eq!(
            login(&app, &ann.email, "wrong password").await.code(),
            "UNAUTHENTICATED"
        );
    }
    for i in 0..5 {
        let res = change("wrong password").await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "attempt {i}: {:#}", res.body);
        assert_eq!(res.field().as_deref(), Some("input.currentPassword"));
    }
    // Ten failures, whichever way: locked for the right password, both ways.
    let res = change(PASSWORD).await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    assert_eq!(
        login(&app, &ann.email, PASSWORD).await.code(),
        "RATE_LIMITED"
    );
    // Nothing changed: the old password is still the stored one, the session still works.
    assert!(
        !app.audit_actions()
            .await
            .contains(&"user.password_change".to_owned())
    );
    app.gql(Some(&ann.token), "{ me { id } }", json!({}))
        .await
        .data();
}

/// An organization owned by `owner` with a key of `role`; returns (org id, key secret).
async fn org_with_key(app: &TestApp, owner: &TestUser, role: &str) -> (String, String) {
    let org = app
        .organization(owner, &format!("org-{}", role.to_lowercase()))
        .await;
    let res = app
        .gql(
            Some(&owner.token),
            "mutation($org: ID!, $role: OrgRole!) { createApiKey(input: {organizationId: $org, name: \"etl\", role: $role}) { secret } }",
            json!({"org": org, "role": role}),
        )
        .await;
    let secret = res.data()["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    (org, secret)
}

#[tokio::test]
async fn api_keys_cannot_manage_members_or_keys_whatever_their_role() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let bob = app.user("bob").await;
    for role in ["ADMIN", "ANALYST", "VIEWER"] {
        let (org, key) = org_with_key(&app, &owner, role).await;
        app.add_member(&owner, &org, &bob, "VIEWER").await;
        let other_key = app
            .gql(Some(&owner.token), "mutation($org: ID!) { createApiKey(input: {organizationId: $org, name: \"other\", role: VIEWER}) { apiKey { id } } }", json!({"org": org}))
            .await
            .data()["createApiKey"]["apiKey"]["id"]
            .clone();
        let audit_before = app.audit_actions().await.len();
        let cases = [
            (
                "mutation($o: ID!, $e: String!) { addMember(input: {organizationId: $o, email: $e, role: ADMIN}) { role } }",
                json!({"o": org, "e": "x@example.com"}),
            ),
            (
                "mutation($o: ID!, $u: ID!) { updateMemberRole(input: {organizationId: $o, userId: $u, role: ADMIN}) { role } }",
                json!({"o": org, "u": bob.id}),
            ),
            (
                "mutation($o: ID!, $u: ID!) { removeMember(input: {organizationId: $o, userId: $u}) }",
                json!({"o": org, "u": bob.id}),
            ),
            (
                "mutation($o: ID!, $u: ID!) { transferOwnership(input: {organizationId: $o, toUserId: $u}) { id } }",
                json!({"o": org, "u": bob.id}),
            ),
            (
                "mutation($o: ID!) { createApiKey(input: {organizationId: $o, name: \"k\", role: VIEWER}) { secret } }",
                json!({"o": org}),
            ),
            (
                "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
                json!({"id": other_key}),
            ),
        ];
        for (query, variables) in cases {
            let res = app.gql(Some(&key), query, variables).await;
            assert_eq!(
                res.code(),
                "FORBIDDEN",
                "{role} key: {query}: {:#}",
                res.body
            );
        }
        assert_eq!(
            app.audit_actions().await.len(),
            audit_before,
            "{role} key changed something"
        );
    }
}

#[tokio::test]
async fn is_superadmin_is_visible_only_to_the_user_and_superadmins() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let org = app.organization(&ann, "shared").await;
    app.add_member(&ann, &org, &bob, "ADMIN").await;
    let query = "query($id: ID!) { node(id: $id) { ... on User { displayName isSuperadmin } } }";
    let me = app
        .gql(Some(&ann.token), "{ me { isSuperadmin } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["isSuperadmin"], false);
    let by_root = app
        .gql(Some(&root.token), query, json!({"id": ann.id}))
        .await;
    assert_eq!(by_root.data()["node"]["isSuperadmin"], false);
    let by_root = app
        .gql(Some(&root.token), query, json!({"id": root.id}))
        .await;
    assert_eq!(by_root.data()["node"]["isSuperadmin"], true);
    // A fellow ADMIN sees the superadmin as a member, but the flag is not disclosed: `false`
    // (the contract keeps the field non-null; a refusal would null the whole user).
    app.add_member(&ann, &org, &root, "VIEWER").await;
    let res = app
        .gql(Some(&bob.token), query, json!({"id": root.id}))
        .await;
    assert_eq!(res.data()["node"]["isSuperadmin"], false);
    assert_eq!(res.data()["node"]["displayName"], "root");
    let res = app
        .gql(
            Some(&bob.token),
            "{ organization(slug: \"shared\") { members { nodes { user { displayName isSuperadmin } } } } }",
            json!({}),
        )
        .await;
    let flags: Vec<bool> = res.data()["organization"]["members"]["nodes"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["user"]["isSuperadmin"].as_bool().expect("a boolean"))
        .collect();
    assert_eq!(flags, [false, false, false]);
}

#[tokio::test]
async fn sessions_note_their_last_use_and_expire_when_idle() {
    // Two idle hours are simulated by backdating rows in SQL: no cached caller may stand in
    // for the database here (with the cache, the idle limit is checked when an entry is filled
    // and the cache's TTL bounds the drift).
    let app = TestApp::spawn_with(|c| {
        c.session_idle_hours = Some(1);
        c.caller_cache_size = 0;
    })
    .await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let me = "{ me { id } }";
    app.gql(Some(&ann.token), me, json!({})).await.data();
    let none = app
        .sql_texts("SELECT count(*)::text AS t FROM sessions WHERE last_used_at IS NOT NULL")
        .await;
    assert_eq!(
        none,
        ["0"],
        "uses are noted in memory, not written per request"
    );
    finvision::domain::auth::api_keys::flush_usage(app.app.core())
        .await
        .expect("flush");
    let used = app
        .sql_texts("SELECT count(*)::text AS t FROM sessions WHERE last_used_at IS NOT NULL")
        .await;
    assert_eq!(used, ["1"]);
    // Ann's session goes unused for two hours; Bob's (never used) was opened two hours ago.
    app.sql_exec(&format!(
        "UPDATE sessions SET last_used_at = now() - interval '2 hours' \
         WHERE user_id = (SELECT id FROM users WHERE email = '{}')",
        ann.email
    ))
    .await;
    app.sql_exec(&format!(
        "UPDATE sessions SET created_at = now() - interval '2 hours' \
         WHERE user_id = (SELECT id FROM users WHERE email = '{}')",
        bob.email
    ))
    .await;
    for token in [&ann.token, &bob.token] {
        let res = app.gql(Some(token), me, json!({})).await;
        assert_eq!(res.code(), "UNAUTHENTICATED", "{:#}", res.body);
    }
    // A fresh sign-in works again.
    let res = login(&app, &ann.email, PASSWORD).await;
    let token = res.data()["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    app.gql(Some(&token), me, json!({})).await.data();
}
