//! Behind PgBouncer in transaction pooling mode (issue 10): the pool goes through a PgBouncer
//! with fewer server connections than the app has clients (`FV_DB_PGBOUNCER=true`), the LISTEN
//! connection goes to the server directly (`FV_LISTEN_DATABASE_URL`). Needs the `pgbouncer`
//! binary, hence the `engines` feature (`.ci/run` installs it and enables the feature).
//!
//! Debian bookworm's PgBouncer is 1.18: it does not track protocol-level prepared statements
//! (1.21's `max_prepared_statements`), and tokio-postgres prepares a named statement in one
//! round trip and binds it in the next, so a statement outside a transaction may be bound on
//! another server connection than the one it was prepared on ("prepared statement sN does not
//! exist"). `FV_DB_PGBOUNCER` therefore keeps every statement inside a transaction (`db::pool`);
//! these tests are what showed it (see the README, "Behind PgBouncer").
#![cfg(feature = "engines")]

mod harness;

use std::time::Duration;

use diesel::{QueryableByName, sql_types::Bytea};
use diesel_async::RunQueryDsl;
use finvision::{
    App,
    config::Config,
    db::{Db, PoolOptions},
};
use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{TestApp, TestDb};
use harness::PgBouncer;

/// Server connections PgBouncer may open for the test database: fewer than the app's pool, so
/// that transactions of different clients take turns on the same server connections.
const BOUNCER_POOL: u32 = 3;
/// The app's pool: its clients of PgBouncer.
const APP_POOL: u32 = 12;

/// An app whose pool goes through a fresh PgBouncer and whose listener does not. The set-up
/// requests before each test's concurrent part are sequential.
struct BouncedApp {
    /// Stopped first (fields drop in order), before the test database is dropped.
    _bouncer: PgBouncer,
    app: TestApp,
}

impl std::ops::Deref for BouncedApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl BouncedApp {
    async fn spawn() -> Self {
        let db = TestDb::new().await;
        let bouncer = PgBouncer::start(&db.url, BOUNCER_POOL);
        let pooled_url = bouncer.url_for(&db.url, &db.name);
        let mut config = Config::for_database(&pooled_url);
        config.listen_database_url = Some(db.url.clone());
        config.db_pgbouncer = true;
        config.db_pool_size = APP_POOL;
        config.db_pool_timeout_secs = 10;
        config.object_store_url = Some("memory://".into());
        let pool = Db::connect(
            &pooled_url,
            &PoolOptions {
                max_size: config.db_pool_size,
                connection_timeout: Duration::from_secs(config.db_pool_timeout_secs),
            },
        )
        .await
        .expect("pool through PgBouncer");
        let app = App::new(config, pool.clone()).expect("app");
        let router = app.router();
        let app = TestApp {
            app,
            router,
            db,
            pool,
        };
        // The listener connects on its own; the caller cache serves hits only once it listens.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !app.app.core().audit_stream().is_listening() {
            assert!(
                std::time::Instant::now() < deadline,
                "the LISTEN connection did not come up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            _bouncer: bouncer,
            app,
        }
    }
}

const CREATE_MODEL: &str =
    "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }";

fn model_input(org: &str, name: &str) -> serde_json::Value {
    json!({"input": {"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}})
}

/// Reads (outside any transaction of the core's) and writes of many clients at once, on three
/// server connections: statements of different clients interleave on every server connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_and_writes_work_through_pgbouncer_in_transaction_mode() {
    let app = BouncedApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let requests = (0..48).map(|i| {
        let (app, owner, org) = (&app, &owner, &org);
        async move {
            if i % 3 == 0 {
                app.gql(
                    Some(&owner.token),
                    CREATE_MODEL,
                    model_input(org, &format!("Plan {i}")),
                )
                .await
                .data();
            } else {
                let res = app
                    .gql(
                        Some(&owner.token),
                        "query($org: ID!) { me { email } organization(id: $org) { slug models(first: 50) { edges { node { name scenarios(first: 5) { edges { node { name } } } } } } } }",
                        json!({"org": org}),
                    )
                    .await;
                assert_eq!(res.data()["organization"]["slug"], "acme");
            }
        }
    });
    join_all(requests).await;
    // Fresh callers authenticate against the database, concurrently.
    let users = join_all((0..12).map(|i| {
        let app = &app;
        async move { app.user(&format!("user{i}")).await }
    }))
    .await;
    join_all(users.iter().map(|user| {
        let app = &app;
        async move {
            let res = app
                .gql(Some(&user.token), "{ me { email } }", json!({}))
                .await;
            assert_eq!(res.data()["me"]["email"], user.email.as_str());
        }
    }))
    .await;
    let res = app
        .gql(
            Some(&owner.token),
            "query($org: ID!) { organization(id: $org) { models(first: 50) { totalCount } } }",
            json!({"org": org}),
        )
        .await;
    assert_eq!(res.data()["organization"]["models"]["totalCount"], 16);
    // The pool really went through PgBouncer: the database saw at most its server connections
    // (besides the listener, the webhook dispatcher and this check's own connection).
    let backends = app
        .sql_texts(
            "SELECT count(*)::text AS t FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name NOT IN ('finvision-listener', 'finvision-webhooks') \
             AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend'",
        )
        .await;
    let backends: u32 = backends[0].parse().unwrap();
    assert!(
        backends <= BOUNCER_POOL,
        "{backends} server connections for a pool of {APP_POOL} behind a PgBouncer pool of {BOUNCER_POOL}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_listener_bypasses_pgbouncer_and_credential_changes_still_settle() {
    let app = BouncedApp::spawn().await;
    let listeners = app
        .sql_texts(
            "SELECT count(*)::text AS t FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'finvision-listener'",
        )
        .await;
    assert_eq!(listeners, ["1"]);
    let user = app.user("alice").await;
    let me = "{ me { email } }";
    // Cached after the first request, then revoked: the sign-out is settled through the
    // listener (a NOTIFY sent through PgBouncer, answered on the direct connection).
    assert_eq!(
        app.gql(Some(&user.token), me, json!({})).await.data()["me"]["email"],
        "alice@example.com"
    );
    app.gql(Some(&user.token), me, json!({})).await.data();
    app.gql(Some(&user.token), "mutation { logout }", json!({}))
        .await
        .data();
    let res = app.gql(Some(&user.token), me, json!({})).await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
}

#[derive(QueryableByName)]
struct ChainLink {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<Bytea>)]
    prev_hash: Option<Vec<u8>>,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

/// The audit chain's lock is `pg_advisory_xact_lock`: taken and released inside the mutation's
/// transaction, which PgBouncer keeps on one server connection from BEGIN to COMMIT. Many
/// concurrent mutations in one organization, through a pool smaller than its clients, still
/// make one unbroken chain: each event links to the one before it, none is linked twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_chain_stays_linear_under_concurrent_mutations_through_pgbouncer() {
    const MUTATIONS: usize = 60;
    let app = BouncedApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let before = app
        .sql_texts(&format!(
            "SELECT count(*)::text AS t FROM audit_events WHERE organization_id = '{}'",
            acme_uuid(&app).await
        ))
        .await[0]
        .parse::<usize>()
        .unwrap();
    // Authenticated once more after the organization's creation (which cleared the caller
    // cache): the concurrent part below is the mutations alone.
    app.gql(Some(&owner.token), "{ me { email } }", json!({}))
        .await
        .data();
    let mutations = (0..MUTATIONS).map(|i| {
        let (app, owner, org) = (&app, &owner, &org);
        async move {
            app.gql(
                Some(&owner.token),
                CREATE_MODEL,
                model_input(org, &format!("Plan {i}")),
            )
            .await
            .data();
        }
    });
    join_all(mutations).await;

    let verified = app
        .gql(
            Some(&owner.token),
            "query($org: ID!) { verifyAuditChain(organizationId: $org) { eventsChecked valid firstBrokenSequence } }",
            json!({"org": org}),
        )
        .await;
    let verified = &verified.data()["verifyAuditChain"];
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["firstBrokenSequence"], serde_json::Value::Null);
    assert_eq!(verified["eventsChecked"], before + MUTATIONS);

    // The same, said of the rows: in sequence order each event's `prev_hash` is the hash of the
    // one before (no gap), and no two events share a predecessor (no fork).
    let org_id = acme_uuid(&app).await;
    let mut conn = app.db.superuser_conn().await;
    let links: Vec<ChainLink> = diesel::sql_query(format!(
        "SELECT id, prev_hash, hash FROM audit_events WHERE organization_id = '{org_id}' ORDER BY id"
    ))
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(links.len(), before + MUTATIONS);
    assert_eq!(
        links[0].prev_hash, None,
        "the chain starts at event {}",
        links[0].id
    );
    for pair in links.windows(2) {
        assert_eq!(
            pair[1].prev_hash.as_deref(),
            Some(pair[0].hash.as_slice()),
            "event {} does not follow event {}",
            pair[1].id,
            pair[0].id
        );
    }
    let predecessors: std::collections::HashSet<_> =
        links.iter().map(|link| link.prev_hash.clone()).collect();
    assert_eq!(
        predecessors.len(),
        links.len(),
        "a fork: two events share a predecessor"
    );
}

/// The UUID of the organization `acme` (the global ID's row, read behind the API).
async fn acme_uuid(app: &TestApp) -> String {
    app.sql_texts("SELECT id::text AS t FROM organizations WHERE slug = 'acme'")
        .await
        .remove(0)
}
