//! The caller cache (`src/domain/auth/cache.rs`): a known caller costs no statement to
//! authenticate, and a change to credentials takes effect on every instance before the response
//! that made it is sent. Two instances share one database as in production: A (the test app) and
//! B (a second `App` with its own pool, cache and listening connection).

use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use finvision::{
    App,
    config::Config,
    db::{Db, PoolOptions},
    domain::auth::cache::SYNC_WAIT,
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    helpers::{Gql, TestApp, TestUser},
    subscription::wait_listening,
};

const ME: &str = "{ me { id } }";
const ORG_KEYS: &str = "query($org: ID!) { organization(id: $org) { apiKeys { totalCount } } }";
const ORG_NAME: &str = "query($org: ID!) { organization(id: $org) { name } }";

/// One server instance, driven through its router.
struct Instance {
    app: App,
    router: Router,
}

impl Instance {
    fn of(app: App) -> Self {
        let router = app.router();
        Self { app, router }
    }

    /// The second instance over the test app's database, its listener connected.
    async fn second(a: &TestApp) -> Self {
        let pool = Db::connect(
            &a.db.app_url,
            &PoolOptions {
                max_size: 4,
                connection_timeout: Duration::from_secs(3),
            },
        )
        .await
        .expect("pool");
        let b = App::new(Config::for_database(&a.db.app_url), pool).expect("second instance");
        wait_listening(&b).await;
        Self::of(b)
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut request =
            Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).expect("request"))
            .await
            .expect("router");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
        Gql { status, body }
    }

    /// The response and the statements it cost this instance.
    async fn costed(&self, token: &str, query: &str, variables: Value) -> (u64, Gql) {
        let before = self.app.core().statement_count();
        let res = self.gql(Some(token), query, variables).await;
        (self.app.core().statement_count() - before, res)
    }

    /// Make sure the caller is cached before what follows: ask twice; the second answer comes
    /// from a cached caller (it costs no more than the first, one statement fewer when the first
    /// was a miss) and the cache holds the token.
    async fn warm(&self, token: &str, query: &str, variables: Value) -> Gql {
        let (first_cost, first) = self.costed(token, query, variables.clone()).await;
        let (second_cost, second) = self.costed(token, query, variables).await;
        assert!(second_cost <= first_cost, "{second:?}");
        assert!(self.app.core().caller_cache().holds(token), "{second:?}");
        assert_eq!(first.body, second.body);
        second
    }
}

/// The test app (instance A) and a second instance B, both listening.
async fn two_instances() -> (TestApp, Instance, Instance) {
    let app = TestApp::spawn().await;
    wait_listening(&app.app).await;
    let a = Instance::of(app.app.clone());
    let b = Instance::second(&app).await;
    (app, a, b)
}

/// Run a credential change and check that it was settled by every instance's answer, not by
/// the bounded wait running out.
async fn settled(change: impl Future<Output = Gql>) -> Gql {
    let started = Instant::now();
    let res = change.await;
    assert!(
        started.elapsed() < SYNC_WAIT,
        "every listener answered before the bound ({:?})",
        started.elapsed()
    );
    res
}

async fn api_key(on: &Instance, by: &TestUser, org: &str, role: &str) -> (String, String) {
    let res = on
        .gql(
            Some(&by.token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }",
            json!({"input": {"organizationId": org, "name": "etl", "role": role}}),
        )
        .await;
    let payload = &res.data()["createApiKey"];
    (
        payload["apiKey"]["id"].as_str().expect("id").to_owned(),
        payload["secret"].as_str().expect("secret").to_owned(),
    )
}

#[tokio::test]
async fn a_warm_request_costs_one_statement_less_than_a_cold_one() {
    let app = TestApp::spawn().await;
    wait_listening(&app.app).await;
    let a = Instance::of(app.app.clone());
    let user = app.user("ada").await;
    let org = app.organization(&user, "acme").await;

    let (cold, first) = a.costed(&user.token, ME, json!({})).await;
    let (warm, second) = a.costed(&user.token, ME, json!({})).await;
    assert_eq!((cold, warm), (2, 1), "session + user, then the user alone");
    assert_eq!(first.body, second.body);
    assert_eq!(second.data()["me"]["id"], user.id.as_str());

    // An API key likewise, with its role.
    let (_, key) = api_key(&a, &user, &org, "VIEWER").await;
    let (cold, _) = a.costed(&key, ORG_NAME, json!({"org": org})).await;
    let (warm, res) = a.costed(&key, ORG_NAME, json!({"org": org})).await;
    assert_eq!(warm + 1, cold);
    assert_eq!(res.data()["organization"]["name"], "acme");
}

#[tokio::test]
async fn a_session_logged_out_on_one_instance_is_refused_by_the_other_at_once() {
    let (app, a, b) = two_instances().await;
    let user = app.user("ada").await;
    b.warm(&user.token, ME, json!({})).await;

    let res = settled(a.gql(Some(&user.token), "mutation { logout }", json!({}))).await;
    assert_eq!(res.data()["logout"], true);
    // The very next request on B, no wait.
    let res = b.gql(Some(&user.token), ME, json!({})).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_everywhere_and_a_password_change_reach_the_other_instance_at_once() {
    let (app, a, b) = two_instances().await;
    let user = app.user("ada").await;
    let other = login(&a, &user).await;
    b.warm(&other, ME, json!({})).await;
    // Changing the password revokes every other session.
    let res = settled(a.gql(
        Some(&user.token),
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }",
        json!({"i": {"currentPassword": crate::helpers::PASSWORD, "newPassword": "another fine password"}}),
    ))
    .await;
    assert_eq!(res.data()["changePassword"], true);
    assert_eq!(
        b.gql(Some(&other), ME, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );

    b.warm(&user.token, ME, json!({})).await;
    settled(a.gql(
        Some(&user.token),
        "mutation { logoutEverywhere }",
        json!({}),
    ))
    .await
    .data();
    assert_eq!(
        b.gql(Some(&user.token), ME, json!({})).await.code(),
        "UNAUTHENTICATED"
    );
}

async fn login(on: &Instance, user: &TestUser) -> String {
    let res = on
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": user.email, "p": crate::helpers::PASSWORD}),
        )
        .await;
    res.data()["login"]["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

#[tokio::test]
async fn a_members_new_role_is_seen_by_the_other_instance_at_once() {
    let (app, a, b) = two_instances().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let org = app.organization(&owner, "acme").await;
    let vars = json!({"org": org});

    // Not a member yet: the organization does not exist for them, on B from the cache.
    let res = b.warm(&member.token, ORG_NAME, vars.clone()).await;
    assert_eq!(res.data()["organization"], Value::Null);
    // Added through A: B sees the organization on the very next request.
    settled(a.gql(
        Some(&owner.token),
        "mutation($i: AddMemberInput!) { addMember(input: $i) { role } }",
        json!({"i": {"organizationId": org, "email": member.email, "role": "ADMIN"}}),
    ))
    .await
    .data();
    let res = b.warm(&member.token, ORG_KEYS, vars.clone()).await;
    assert_eq!(res.data()["organization"]["apiKeys"]["totalCount"], 0);

    // Demoted through A: the ADMIN-only field is refused at once.
    settled(a.gql(
        Some(&owner.token),
        "mutation($i: UpdateMemberRoleInput!) { updateMemberRole(input: $i) { role } }",
        json!({"i": {"organizationId": org, "userId": member.id, "role": "VIEWER"}}),
    ))
    .await
    .data();
    let res = b.gql(Some(&member.token), ORG_KEYS, vars.clone()).await;
    assert_eq!(res.code(), "FORBIDDEN");

    // Removed through A: the organization no longer exists for them.
    b.warm(&member.token, ORG_NAME, vars.clone()).await;
    settled(a.gql(
        Some(&owner.token),
        "mutation($i: RemoveMemberInput!) { removeMember(input: $i) }",
        json!({"i": {"organizationId": org, "userId": member.id}}),
    ))
    .await
    .data();
    let res = b.gql(Some(&member.token), ORG_NAME, vars.clone()).await;
    assert_eq!(res.data()["organization"], Value::Null);

    // Deleted through A: not even its owner sees it any more.
    b.warm(&owner.token, ORG_NAME, vars.clone()).await;
    settled(a.gql(
        Some(&owner.token),
        "mutation($id: ID!) { deleteOrganization(id: $id) }",
        json!({"id": org}),
    ))
    .await
    .data();
    let res = b.gql(Some(&owner.token), ORG_NAME, vars).await;
    assert_eq!(res.data()["organization"], Value::Null);
}

#[tokio::test]
async fn a_new_organization_and_a_transfer_are_seen_by_the_other_instance_at_once() {
    let (app, a, b) = two_instances().await;
    let owner = app.user("owner").await;
    let heir = app.user("heir").await;
    b.warm(&owner.token, ME, json!({})).await;
    // Created through A: its OWNER reads an ADMIN-only field on B at once.
    let org = settled(a.gql(
        Some(&owner.token),
        "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
        json!({"i": {"name": "acme", "slug": "acme"}}),
    ))
    .await
    .data()["createOrganization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let vars = json!({"org": org});
    b.warm(&owner.token, ORG_KEYS, vars.clone()).await;

    app.add_member(&owner, &org, &heir, "VIEWER").await;
    settled(a.gql(
        Some(&owner.token),
        "mutation($i: TransferOwnershipInput!) { transferOwnership(input: $i) { id } }",
        json!({"i": {"organizationId": org, "toUserId": heir.id}}),
    ))
    .await
    .data();
    // The former OWNER is ADMIN now: deleting is OWNER-only.
    let res = b
        .gql(
            Some(&owner.token),
            "mutation($id: ID!) { deleteOrganization(id: $id) }",
            json!({"id": org}),
        )
        .await;
    assert_eq!(res.code(), "FORBIDDEN");
    let res = b.gql(Some(&heir.token), ORG_KEYS, vars).await;
    assert_eq!(res.data()["organization"]["apiKeys"]["totalCount"], 0);
}

#[tokio::test]
async fn an_api_key_revoked_on_one_instance_is_refused_by_the_other_at_once() {
    let (app, a, b) = two_instances().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let (id, key) = api_key(&a, &owner, &org, "ANALYST").await;
    let vars = json!({"org": org});
    b.warm(&key, ORG_NAME, vars.clone()).await;

    settled(a.gql(
        Some(&owner.token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({"id": id}),
    ))
    .await
    .data();
    let res = b.gql(Some(&key), ORG_NAME, vars).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

/// Ask `on` until `done` holds, at most `limit` (polling every 20 ms: waiting for the condition).
async fn poll(on: &Instance, token: &str, limit: Duration, done: impl Fn(&Gql) -> bool) -> Gql {
    let started = Instant::now();
    loop {
        let res = on.gql(Some(token), ME, json!({})).await;
        if done(&res) || started.elapsed() > limit {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_made_in_sql_reaches_every_instance_through_the_trigger() {
    let (app, a, b) = two_instances().await;
    let user = app.user("ada").await;
    a.warm(&user.token, ME, json!({})).await;
    b.warm(&user.token, ME, json!({})).await;

    app.sql_exec(&format!(
        "UPDATE users SET is_active = false WHERE email = '{}'",
        user.email
    ))
    .await;
    for instance in [&a, &b] {
        let res = poll(instance, &user.token, Duration::from_secs(2), |res| {
            res.status == StatusCode::UNAUTHORIZED
        })
        .await;
        assert_eq!(res.code(), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_listener_that_reconnects_forgets_what_it_may_have_missed() {
    let app = TestApp::spawn().await;
    wait_listening(&app.app).await;
    let a = Instance::of(app.app.clone());
    let user = app.user("ada").await;
    a.warm(&user.token, ME, json!({})).await;

    // Cut the listening connection, then change the user while nobody listens: the notice is
    // lost. No hit is served until the connection is back, and then the cache starts empty.
    app.sql_exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'finvision-listener' AND datname = current_database()",
    )
    .await;
    app.sql_exec(&format!(
        "UPDATE users SET is_active = false WHERE email = '{}'",
        user.email
    ))
    .await;
    let res = poll(&a, &user.token, Duration::from_secs(10), |res| {
        res.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

#[tokio::test]
async fn size_zero_disables_the_cache() {
    let app = TestApp::spawn_with(|config| config.caller_cache_size = 0).await;
    wait_listening(&app.app).await;
    let a = Instance::of(app.app.clone());
    let user = app.user("ada").await;
    let counts = [
        a.costed(&user.token, ME, json!({})).await.0,
        a.costed(&user.token, ME, json!({})).await.0,
        a.costed(&user.token, ME, json!({})).await.0,
    ];
    assert_eq!(
        counts,
        [2, 2, 2],
        "every request authenticates against the database"
    );
    // Its instance still takes part in the protocol: a change is settled, not timed out.
    settled(a.gql(Some(&user.token), "mutation { logout }", json!({})))
        .await
        .data();
}

#[tokio::test]
async fn a_cached_caller_is_kept_at_most_the_ttl() {
    let app = TestApp::spawn_with(|config| config.caller_cache_ttl_secs = 1).await;
    wait_listening(&app.app).await;
    let a = Instance::of(app.app.clone());
    let user = app.user("ada").await;
    let filled = Instant::now();
    a.warm(&user.token, ME, json!({})).await;
    loop {
        let (cost, res) = a.costed(&user.token, ME, json!({})).await;
        res.data();
        if cost == 2 {
            break;
        }
        assert!(
            filled.elapsed() < Duration::from_secs(5),
            "the entry outlived its TTL"
        );
        // Polling: the TTL's passing is the thing under test (1 s, the smallest the setting
        // allows, `caller_cache_ttl_secs = 1` above).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        filled.elapsed() >= Duration::from_secs(1),
        "not before the TTL"
    );
}

#[tokio::test]
async fn a_cached_key_stops_working_at_its_own_expiry() {
    let app = TestApp::spawn().await;
    wait_listening(&app.app).await;
    let a = Instance::of(app.app.clone());
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let res = a
        .gql(
            Some(&owner.token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
            json!({"input": {"organizationId": org, "name": "etl", "role": "VIEWER",
                             "expiresAt": expires_at.to_rfc3339()}}),
        )
        .await;
    let key = res.data()["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let vars = json!({"org": org});
    a.warm(&key, ORG_NAME, vars.clone()).await;
    // Nothing notifies an expiry: the entry itself knows it (the TTL is 60 s).
    let left = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    // The expiry's passing is the thing under test: 2 s leaves a loaded machine time to create
    // and warm the key before it expires.
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    let res = a.gql(Some(&key), ORG_NAME, vars).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}
