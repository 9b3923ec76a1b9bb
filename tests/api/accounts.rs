//! Accounts through the GraphQL endpoint: register, login (and its rate limit), sessions,
//! logout, password change, and the audit events they write.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};

use crate::helpers::{Gql, PASSWORD, TestApp, TestUser};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { token expiresAt user { id email displayName } } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token expiresAt user { id email lastLoginAt } } }";
const LOGOUT: &str = "mutation { logout }";
const LOGOUT_EVERYWHERE: &str = "mutation { logoutEverywhere }";
const CHANGE_PASSWORD: &str =
    "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";
const ME: &str = "{ me { id email } }";
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn register(app: &TestApp, email: &str, password: &str, name: &str) -> Gql {
    app.gql(
        None,
        REGISTER,
        json!({"input": {"email": email, "password": password, "displayName": name}}),
    )
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> Gql {
    app.gql(None, LOGIN, json!({"email": email, "password": password}))
        .await
}

/// Sign in and return the new token.
async fn login_token(app: &TestApp, email: &str, password: &str) -> String {
    let res = login(app, email, password).await;
    res.data()["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Assert `token` is refused: HTTP 401 with an `UNAUTHENTICATED` JSON error.
#[track_caller]
fn assert_refused(res: &Gql) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{:#}", res.body);
    assert_eq!(
        res.body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{:#}",
        res.body
    );
}

async fn me(app: &TestApp, token: &str) -> Gql {
    app.gql(Some(token), ME, json!({})).await
}

/// Whether `token` currently works on `me`.
async fn works(app: &TestApp, token: &str, email: &str) {
    let res = me(app, token).await;
    assert_eq!(res.status, StatusCode::OK, "{:#}", res.body);
    assert_eq!(res.data()["me"]["email"], email);
}

#[tokio::test]
async fn register_returns_a_token_and_the_user() {
    let app = TestApp::spawn().await;
    let res = register(&app, "ann@example.com", PASSWORD, "Ann").await;
    let payload = &res.data()["register"];
    let token = payload["token"].as_str().expect("token");
    assert!(token.starts_with("fvs_"), "{token}");
    assert!(payload["expiresAt"].is_string());
    assert_eq!(payload["user"]["email"], "ann@example.com");
    assert_eq!(payload["user"]["displayName"], "Ann");
    let me = me(&app, token).await;
    assert_eq!(me.data()["me"]["id"], payload["user"]["id"]);
    assert_eq!(app.count_rows("users").await, 1);
    assert_eq!(app.count_rows("sessions").await, 1);
}

#[tokio::test]
async fn register_with_a_taken_email_in_another_case_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.register("ann").await;
    let res = register(&app, "ANN@Example.COM", PASSWORD, "Other Ann").await;
    assert_eq!(res.code(), "CONFLICT", "{:#}", res.body);
    assert!(res.body["data"].is_null() || res.body["data"]["register"].is_null());
    assert_eq!(app.count_rows("users").await, 1);
    assert_eq!(app.audit_actions().await, vec!["user.register"]);
}

#[tokio::test]
async fn register_rejects_bad_input_naming_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    for (email, password, name, field) in [
        ("not-an-email", PASSWORD, "Ann", "input.email"),
        ("", PASSWORD, "Ann", "input.email"),
        ("ann@example.com", "short", "Ann", "input.password"),
        ("ann@example.com", PASSWORD, "", "input.displayName"),
        ("ann@example.com", PASSWORD, "   ", "input.displayName"),
    ] {
        let res = register(&app, email, password, name).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{field}: {:#}", res.body);
        assert_eq!(res.field().as_deref(), Some(field), "{:#}", res.body);
    }
    assert_eq!(app.count_rows("users").await, 0);
    assert_eq!(app.count_rows("sessions").await, 0);
    assert_eq!(app.count_rows("audit_events").await, 0);
}

#[tokio::test]
async fn register_is_forbidden_when_registration_is_disabled() {
    let app = TestApp::spawn_with(|c| c.registration = false).await;
    let res = register(&app, "ann@example.com", PASSWORD, "Ann").await;
    assert_eq!(res.code(), "FORBIDDEN", "{:#}", res.body);
    assert_eq!(app.count_rows("users").await, 0);
}

#[tokio::test]
async fn passwords_are_argon2id_and_sessions_store_only_a_token_hash() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let hashes = app.sql_texts("SELECT password_hash AS t FROM users").await;
    assert_eq!(hashes.len(), 1);
    assert!(
        hashes[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hashes[0]
    );
    assert!(!hashes[0].contains(PASSWORD));

    let lengths = app
        .sql_texts("SELECT octet_length(token_hash)::text AS t FROM sessions")
        .await;
    assert_eq!(lengths, vec!["32"]);
    // The stored hash is the SHA-256 of the token (tokens are base64url: safe in a literal).
    let matching = app
        .sql_texts(&format!(
            "SELECT count(*)::text AS t FROM sessions \
             WHERE token_hash = sha256(convert_to('{}', 'UTF8'))",
            ann.token
        ))
        .await;
    assert_eq!(matching, vec!["1"]);
    let rows = app
        .sql_texts("SELECT row_to_json(s)::text AS t FROM sessions s")
        .await;
    let secret = ann.token.trim_start_matches("fvs_");
    for row in rows {
        assert!(!row.contains(secret), "the token is stored: {row}");
    }
}

#[tokio::test]
async fn login_returns_a_new_working_token_and_sets_last_login_at() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let before = app
        .gql(Some(&ann.token), "{ me { lastLoginAt } }", json!({}))
        .await;
    assert!(before.data()["me"]["lastLoginAt"].is_null());

    // The email is matched case-insensitively.
    let res = login(&app, "Ann@Example.com", PASSWORD).await;
    let payload = &res.data()["login"];
    let token = payload["token"].as_str().expect("token");
    assert_ne!(token, ann.token);
    assert_eq!(payload["user"]["id"], ann.id.as_str());
    assert!(payload["user"]["lastLoginAt"].is_string(), "{payload:#}");
    works(&app, token, &ann.email).await;
    works(&app, &ann.token, &ann.email).await;
    let after = app
        .gql(Some(token), "{ me { lastLoginAt } }", json!({}))
        .await;
    assert!(after.data()["me"]["lastLoginAt"].is_string());
    assert_eq!(app.count_rows("sessions").await, 2);
    assert_eq!(
        app.audit_actions().await,
        vec!["user.register", "auth.login"]
    );
}

#[tokio::test]
async fn last_login_at_and_email_follow_the_private_field_rules() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let org = app.organization(&ann, "acme").await;
    app.add_member(&ann, &org, &bob, "VIEWER").await;
    login_token(&app, &ann.email, PASSWORD).await;
    login_token(&app, &bob.email, PASSWORD).await;
    let query = "query($id: ID!) { node(id: $id) { ... on Organization { members { nodes { role user { displayName email lastLoginAt } } } } } }";
    // The owner sees the member's private fields.
    let res = app.gql(Some(&ann.token), query, json!({"id": org})).await;
    let members = res.data()["node"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let bob_row = members.iter().find(|m| m["role"] == "VIEWER").expect("bob");
    assert_eq!(bob_row["user"]["email"], bob.email.as_str());
    assert!(bob_row["user"]["lastLoginAt"].is_string());
    // A viewer sees the owner's name but not their email or last sign-in.
    let res = app.gql(Some(&bob.token), query, json!({"id": org})).await;
    assert_eq!(res.code(), "FORBIDDEN", "{:#}", res.body);
    let members = res.body["data"]["node"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let ann_row = members.iter().find(|m| m["role"] == "OWNER").expect("ann");
    assert_eq!(ann_row["user"]["displayName"], "ann");
    assert!(ann_row["user"]["email"].is_null());
    assert!(ann_row["user"]["lastLoginAt"].is_null());
    // Signing in as bob in the same request shows bob's own fields only.
    let res = app
        .gql(
            None,
            LOGIN,
            json!({"email": bob.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.data()["login"]["user"]["email"], bob.email.as_str());
}

#[tokio::test]
async fn login_failures_are_indistinguishable_and_audited() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let cat = app.register("cat").await;
    app.sql_exec(&format!(
        "UPDATE users SET is_active = false WHERE email = '{}'",
        bob.email
    ))
    .await;
    app.sql_exec(&format!(
        "UPDATE users SET deleted_at = now() WHERE email = '{}'",
        cat.email
    ))
    .await;
    let sessions_before = app.count_rows("sessions").await;

    let unknown = login(&app, "nobody@example.com", PASSWORD).await;
    let wrong = login(&app, &ann.email, "wrong password").await;
    let inactive = login(&app, &bob.email, PASSWORD).await;
    let deleted = login(&app, &cat.email, PASSWORD).await;
    for res in [&unknown, &wrong, &inactive, &deleted] {
        assert_eq!(res.code(), "UNAUTHENTICATED", "{:#}", res.body);
        assert_eq!(
            res.errors()[0]["message"],
            unknown.errors()[0]["message"],
            "{:#}",
            res.body
        );
        assert!(res.body["data"].is_null() || res.body["data"]["login"].is_null());
    }
    assert_eq!(app.count_rows("sessions").await, sessions_before);
    let actions = app.audit_actions().await;
    assert_eq!(
        actions[3..],
        ["auth.login_failed"; 4],
        "one auth.login_failed per failure: {actions:?}"
    );
    // The inactive user's existing session stops working as well.
    assert_refused(&me(&app, &bob.token).await);
    assert_refused(&me(&app, &cat.token).await);
}

#[tokio::test]
async fn an_account_is_locked_after_ten_failures_even_for_the_right_password() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    for i in 0..10 {
        let res = login(&app, &ann.email, "wrong password").await;
        assert_eq!(res.code(), "UNAUTHENTICATED", "attempt {i}: {:#}", res.body);
    }
    let res = login(&app, &ann.email, PASSWORD).await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    // Another spelling of the same email is the same account.
    let res = login(&app, "ANN@example.com", PASSWORD).await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    // Sessions opened before the lock keep working; other accounts are unaffected.
    works(&app, &ann.token, &ann.email).await;
    let token = login_token(&app, &bob.email, PASSWORD).await;
    works(&app, &token, &bob.email).await;
}

#[tokio::test]
async fn failures_older_than_the_window_do_not_count() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    for _ in 0..10 {
        login(&app, &ann.email, "wrong password").await;
    }
    assert_eq!(
        login(&app, &ann.email, PASSWORD).await.code(),
        "RATE_LIMITED"
    );
    // Age the failures past the 15-minute window (the audit log is append-only for the app,
    // not for the superuser; triggers may guard it, so disable them for this statement).
    app.sql_exec("ALTER TABLE audit_events DISABLE TRIGGER USER")
        .await;
    app.sql_exec(
        "UPDATE audit_events SET created_at = now() - interval '16 minutes' \
         WHERE action = 'auth.login_failed'",
    )
    .await;
    app.sql_exec("ALTER TABLE audit_events ENABLE TRIGGER USER")
        .await;
    login_token(&app, &ann.email, PASSWORD).await;
}

/// POST a login from a given client address (what `into_make_service_with_connect_info` adds).
async fn login_from(app: &TestApp, addr: SocketAddr, email: &str, password: &str) -> Gql {
    let body = json!({"query": LOGIN, "variables": {"email": email, "password": password}});
    let mut request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    request.extensions_mut().insert(ConnectInfo(addr));
    let (status, _, bytes) = app.send(request).await;
    Gql {
        status,
        body: serde_json::from_slice(&bytes).expect("json"),
    }
}

#[tokio::test]
async fn an_address_is_locked_after_its_failure_limit() {
    // The limit is 100 by default (`config::for_database_has_the_defaults`); 12 here, so that
    // the test does not verify a hundred passwords, and above the per-account limit of 10.
    let app = TestApp::spawn_with(|c| c.login_failures_per_address = 12).await;
    let ann = app.register("ann").await;
    let attacker: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let other: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    // 12 failures, spread over many accounts so that no account reaches its own limit.
    for i in 0..12 {
        let res = login_from(&app, attacker, &format!("guess{i}@example.com"), "nope").await;
        assert_eq!(res.code(), "UNAUTHENTICATED", "attempt {i}: {:#}", res.body);
    }
    let res = login_from(&app, attacker, &ann.email, PASSWORD).await;
    assert_eq!(res.code(), "RATE_LIMITED", "{:#}", res.body);
    let res = login_from(&app, other, &ann.email, PASSWORD).await;
    assert!(res.data()["login"]["token"].is_string());
}

#[tokio::test]
async fn logout_revokes_only_the_current_session() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let second = login_token(&app, &ann.email, PASSWORD).await;
    let res = app.gql(Some(&ann.token), LOGOUT, json!({})).await;
    assert_eq!(res.data()["logout"], true);
    let refused = me(&app, &ann.token).await;
    assert_refused(&refused);
    assert!(refused.body["errors"][0]["message"].is_string());
    works(&app, &second, &ann.email).await;
    let revoked = app
        .sql_texts("SELECT count(*)::text AS t FROM sessions WHERE revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked, vec!["1"]);
}

#[tokio::test]
async fn logout_everywhere_revokes_every_session_and_counts_them() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let second = login_token(&app, &ann.email, PASSWORD).await;
    let third = login_token(&app, &ann.email, PASSWORD).await;
    let res = app.gql(Some(&second), LOGOUT_EVERYWHERE, json!({})).await;
    assert_eq!(res.data()["logoutEverywhere"], 3);
    for token in [&ann.token, &second, &third] {
        assert_refused(&me(&app, token).await);
    }
    works(&app, &bob.token, &bob.email).await;
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_revokes_the_other_sessions() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let other = login_token(&app, &ann.email, PASSWORD).await;

    let res = app
        .gql(
            Some(&ann.token),
            CHANGE_PASSWORD,
            json!({"input": {"currentPassword": "not my password", "newPassword": NEW_PASSWORD}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
    assert_eq!(res.field().as_deref(), Some("input.currentPassword"));
    works(&app, &other, &ann.email).await;

    let res = app
        .gql(
            Some(&ann.token),
            CHANGE_PASSWORD,
            json!({"input": {"currentPassword": PASSWORD, "newPassword": "short"}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
    assert_eq!(res.field().as_deref(), Some("input.newPassword"));

    let res = app
        .gql(
            Some(&ann.token),
            CHANGE_PASSWORD,
            json!({"input": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}}),
        )
        .await;
    assert_eq!(res.data()["changePassword"], true);
    works(&app, &ann.token, &ann.email).await;
    assert_refused(&me(&app, &other).await);
    assert_eq!(
        login(&app, &ann.email, PASSWORD).await.code(),
        "UNAUTHENTICATED"
    );
    let token = login_token(&app, &ann.email, NEW_PASSWORD).await;
    works(&app, &token, &ann.email).await;
}

#[tokio::test]
async fn expired_sessions_and_malformed_headers_get_401() {
    let app = TestApp::spawn().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.sql_exec(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 minute' \
         WHERE user_id = (SELECT id FROM users WHERE email = '{}')",
        ann.email
    ))
    .await;
    assert_refused(&me(&app, &ann.token).await);
    works(&app, &bob.token, &bob.email).await;

    for authorization in [
        "Basic xyz".to_owned(),
        "Bearer".to_owned(),
        "Bearer not-a-token".to_owned(),
        format!("Token {}", bob.token),
    ] {
        let request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, authorization.as_str())
            .body(Body::from(json!({"query": ME}).to_string()))
            .expect("request");
        let (status, _, bytes) = app.send(request).await;
        let body: Value = serde_json::from_slice(&bytes).expect("json body");
        assert_refused(&Gql { status, body });
    }
}

#[tokio::test]
async fn anonymous_callers_see_no_one_and_cannot_act() {
    let app = TestApp::spawn().await;
    let res = app.gql(None, ME, json!({})).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.data()["me"].is_null());
    for query in [
        LOGOUT,
        LOGOUT_EVERYWHERE,
        "mutation { changePassword(input: {currentPassword: \"correct horse battery\", newPassword: \"another password\"}) }",
        "mutation { createOrganization(input: {name: \"Acme\", slug: \"acme\"}) { id } }",
    ] {
        let res = app.gql(None, query, json!({})).await;
        assert_eq!(res.code(), "UNAUTHENTICATED", "{query}: {:#}", res.body);
    }
    assert_eq!(app.count_rows("audit_events").await, 0);
    assert_eq!(app.count_rows("organizations").await, 0);
}

/// Assert exactly one audit event was written since `seen`, with `action`.
async fn expect_one(app: &TestApp, seen: &mut usize, action: &str) {
    let rows = new_audit_rows(app, *seen).await;
    assert_eq!(
        rows.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        vec![action],
        "{rows:#?}"
    );
    *seen += 1;
}

/// The audit rows after the last `seen`, as `(action, row JSON)`.
async fn new_audit_rows(app: &TestApp, seen: usize) -> Vec<(String, String)> {
    let actions = app.audit_actions().await;
    let rows = app
        .sql_texts("SELECT row_to_json(a)::text AS t FROM audit_events a ORDER BY id")
        .await;
    actions.into_iter().zip(rows).skip(seen).collect()
}

#[tokio::test]
async fn every_account_mutation_writes_one_audit_event_without_secrets() {
    let app = TestApp::spawn().await;
    let mut seen = 0;
    let mut tokens: Vec<String> = Vec::new();

    let ann: TestUser = app.register("ann").await;
    tokens.push(ann.token.clone());
    expect_one(&app, &mut seen, "user.register").await;

    let res = login(&app, &ann.email, "wrong password").await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
    expect_one(&app, &mut seen, "auth.login_failed").await;

    let second = login_token(&app, &ann.email, PASSWORD).await;
    tokens.push(second.clone());
    expect_one(&app, &mut seen, "auth.login").await;

    let res = app.gql(Some(&second), LOGOUT, json!({})).await;
    assert_eq!(res.data()["logout"], true);
    expect_one(&app, &mut seen, "auth.logout").await;

    let third = login_token(&app, &ann.email, PASSWORD).await;
    tokens.push(third.clone());
    expect_one(&app, &mut seen, "auth.login").await;

    let res = app
        .gql(
            Some(&third),
            CHANGE_PASSWORD,
            json!({"input": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}}),
        )
        .await;
    assert_eq!(res.data()["changePassword"], true);
    expect_one(&app, &mut seen, "user.password_change").await;

    let res = app.gql(Some(&third), LOGOUT_EVERYWHERE, json!({})).await;
    assert_eq!(res.data()["logoutEverywhere"], 1);
    expect_one(&app, &mut seen, "auth.logout_everywhere").await;

    // No secret anywhere in the audit rows: passwords, password hashes, tokens, token hashes.
    let rows = new_audit_rows(&app, 0).await;
    assert_eq!(rows.len(), 7);
    let password_hash = &app.sql_texts("SELECT password_hash AS t FROM users").await[0];
    let token_hashes = app
        .sql_texts("SELECT encode(token_hash, 'hex') AS t FROM sessions")
        .await;
    let values = app
        .sql_texts(
            "SELECT coalesce(old_values::text, '') || ' ' || coalesce(new_values::text, '') AS t \
             FROM audit_events",
        )
        .await;
    for (action, row) in &rows {
        for secret in [PASSWORD, NEW_PASSWORD, "wrong password", "$argon2"] {
            assert!(!row.contains(secret), "{action} holds {secret}: {row}");
        }
        assert!(!row.contains(password_hash.as_str()), "{action}: {row}");
        for token in &tokens {
            assert!(
                !row.contains(token.trim_start_matches("fvs_")),
                "{action}: {row}"
            );
        }
        for hash in &token_hashes {
            assert!(!row.contains(hash.as_str()), "{action}: {row}");
        }
    }
    for value in values {
        let lower = value.to_lowercase();
        assert!(
            !lower.contains("password") && !lower.contains("token") && !lower.contains("hash"),
            "a secret-looking key in the audit values: {value}"
        );
    }
}
