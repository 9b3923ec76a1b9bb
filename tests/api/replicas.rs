//! Read replicas and failover with the real engines (issue 10): a primary and a hot standby
//! made by `pg_basebackup -R` on loopback (`replicas/cluster.rs`), the server reading query
//! operations from the standby (`FV_DATABASE_REPLICA_URLS`), read-your-writes through
//! `x-fv-lsn` and without the client's help, a lagging or stopped standby skipped, and a
//! promotion (`pg_ctl promote`) under a write load with two server instances and a subscriber.
//! Needs PostgreSQL's server binaries, hence the `engines` feature with the PgBouncer tests.
#![cfg(feature = "engines")]

mod auto_failover;
mod cluster;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use finvision::{
    App,
    config::Config,
    db::{Db, PoolOptions, migrate},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    helpers::{PASSWORD, eventually},
    websocket::{next_json, send, ws_connect},
};
use cluster::Cluster;

/// A server instance over the clusters, called through its router.
struct Node {
    app: App,
    router: Router,
}

/// What a response brought.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn data(&self) -> &Value {
        assert!(
            self.body["errors"].is_null(),
            "unexpected errors: {:#}",
            self.body
        );
        &self.body["data"]
    }

    fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    fn lsn(&self) -> Option<String> {
        self.headers
            .get("x-fv-lsn")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

impl Node {
    /// An instance whose primary is `primary_url` (a multi-host URL for failover), whose LISTEN
    /// connection uses it too, and whose queries read from `replicas`.
    async fn start(
        primary_url: &str,
        replicas: &[String],
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::for_database(primary_url);
        config.database_replica_urls = replicas.to_vec();
        config.replica_poll_ms = 20;
        config.object_store_url = Some("memory://".into());
        config.db_pool_size = 8;
        configure(&mut config);
        let pool = Db::connect(
            primary_url,
            &PoolOptions {
                max_size: config.db_pool_size,
                connection_timeout: Duration::from_secs(config.db_pool_timeout_secs),
            },
        )
        .await
        .expect("pool");
        let app = App::new(config, pool).expect("app");
        let router = app.router();
        let node = Self { app, router };
        eventually("the audit listener connects", || async {
            node.app.core().audit_stream().is_listening()
        })
        .await;
        node
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("router");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn readyz(&self) -> (StatusCode, Value) {
        let (status, body) = self.get("/readyz").await;
        (
            status,
            serde_json::from_str(&body).expect("JSON from /readyz"),
        )
    }

    async fn wait_replica(&self, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = self.readyz().await;
            if body["replicas"][0]["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica never became {state}: {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn gql(
        &self,
        token: Option<&str>,
        lsn: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Reply {
        let mut request =
            Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(lsn) = lsn {
            request = request.header("x-fv-lsn", lsn);
        }
        let body = json!({"query": query, "variables": variables}).to_string();
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).expect("request"))
            .await
            .expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Register `name` and return their token.
    async fn register(&self, name: &str) -> String {
        let reply = self
            .gql(
                None,
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { token } }",
                json!({"input": {"email": format!("{name}@example.com"), "password": PASSWORD, "displayName": name}}),
            )
            .await;
        reply.data()["register"]["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    async fn organization(&self, token: &str, slug: &str) -> String {
        let reply = self
            .gql(
                Some(token),
                None,
                "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }",
                json!({"input": {"name": slug, "slug": slug}}),
            )
            .await;
        reply.data()["createOrganization"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }
}

const AUDIT: &str = "subscription($org: ID!, $after: String) { auditEvents(organizationId: $org, after: $after) { sequence action entityId } }";
const CREATE_MODEL: &str =
    "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }";
const UPDATE_MODEL: &str =
    "mutation($input: UpdateModelInput!) { updateModel(input: $input) { version } }";
const READ_MODEL: &str = "query($id: ID!) { model(id: $id) { name version } }";

fn model_input(org: &str, name: &str) -> Value {
    json!({"input": {"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}})
}

async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.expect("connect")
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Calls of statements reading `financial_models` (the loader's), by pg_stat_statements.
async fn model_reads(url: &str) -> i64 {
    count(
        url,
        "SELECT coalesce(sum(calls), 0)::bigint AS n FROM pg_stat_statements \
         WHERE query LIKE 'SELECT%' AND query LIKE '%FROM%\"financial_models\"%' AND query NOT LIKE '%pg_stat_statements%'",
    )
    .await
}

/// One `n` from `sql` on the server at `url`.
async fn count(url: &str, sql: &str) -> i64 {
    use diesel_async::RunQueryDsl;
    let mut conn = connect(url).await;
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .expect(sql)
        .n
}

/// The names of every model on the server at `url`.
async fn names(url: &str) -> Vec<String> {
    query_names(url, "SELECT name FROM financial_models").await
}

/// The `name` column of `sql`'s rows on the server at `url`.
async fn query_names(url: &str, sql: &str) -> Vec<String> {
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let mut conn = connect(url).await;
    diesel::sql_query(sql)
        .load::<Name>(&mut conn)
        .await
        .expect("names")
        .into_iter()
        .map(|n| n.name)
        .collect()
}

/// Run `sql` on the server at `url`.
async fn exec(url: &str, sql: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = connect(url).await;
    diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
}

async fn reset_statements(url: &str) {
    exec(url, "SELECT pg_stat_statements_reset()").await;
}

/// A primary with the schema and pg_stat_statements, and a standby made from it.
async fn primary_and_standby(synchronous: bool) -> (Cluster, Cluster) {
    let primary = Cluster::primary();
    exec(
        &primary.url("postgres"),
        "CREATE EXTENSION pg_stat_statements",
    )
    .await;
    migrate::run(&primary.url("postgres"), migrate::Direction::Up)
        .await
        .expect("migrate");
    let standby = Cluster::standby_of(&primary);
    if synchronous {
        // Commits wait for the standby's flush from now on. Set after the base backup, so that
        // the standby does not inherit it and block its own commits once promoted.
        exec(
            &primary.url("postgres"),
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        )
        .await;
        exec(&primary.url("postgres"), "SELECT pg_reload_conf()").await;
    }
    (primary, standby)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Query operations read from the standby (pg_stat_statements on each server says so), and
/// 1,000 write-then-read pairs all read their write: half sending back `x-fv-lsn`, half relying
/// on the caller's recent write on this instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_read_from_the_standby_and_always_see_their_writes() {
    let (primary, standby) = primary_and_standby(false).await;
    let node = Node::start(&primary.url("postgres"), &[standby.url("postgres")], |_| {}).await;
    node.wait_replica("up").await;
    let token = node.register("owner").await;
    let org = node.organization(&token, "acme").await;
    let created = node
        .gql(Some(&token), None, CREATE_MODEL, model_input(&org, "Plan"))
        .await;
    let id = created.data()["createModel"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The response of a write carries its commit position, in the header and the extension.
    let lsn = created.lsn().expect("x-fv-lsn on a mutation's response");
    assert_eq!(created.body["extensions"]["lsn"], lsn.as_str());

    reset_statements(&primary.url("postgres")).await;
    reset_statements(&standby.url("postgres")).await;
    let mut with_header = Vec::new();
    let mut without_header = Vec::new();
    let mut version = 1;
    for i in 0..1_000 {
        let name = format!("Plan v{i}");
        let written = node
            .gql(
                Some(&token),
                None,
                UPDATE_MODEL,
                json!({"input": {"id": id, "version": version, "name": name}}),
            )
            .await;
        version = written.data()["updateModel"]["version"]
            .as_i64()
            .expect("version");
        let lsn = written.lsn().expect("x-fv-lsn");
        let sent = (i % 2 == 0).then_some(lsn.as_str());
        let started = Instant::now();
        let read = node
            .gql(Some(&token), sent, READ_MODEL, json!({"id": id}))
            .await;
        let took = started.elapsed();
        assert_eq!(
            read.data()["model"],
            json!({"name": name, "version": version}),
            "pair {i} read an older model"
        );
        assert!(read.lsn().is_none(), "a query wrote nothing");
        if sent.is_some() {
            with_header.push(took);
        } else {
            without_header.push(took);
        }
    }
    let on_standby = model_reads(&standby.url("postgres")).await;
    let on_primary = model_reads(&primary.url("postgres")).await;
    // Each update reads its model on the primary (the version check); each query reads it on
    // the standby, unless the standby had not replayed the update within the wait.
    assert!(
        on_standby >= 990,
        "only {on_standby} model reads on the standby"
    );
    assert!(
        on_primary >= 1_000,
        "{on_primary} model reads on the primary"
    );
    with_header.sort();
    without_header.sort();
    eprintln!(
        "read-your-writes over 1,000 pairs: model reads on the standby {on_standby}, on the primary {on_primary}; \
         read latency with x-fv-lsn p50 {:?} p99 {:?}, without p50 {:?} p99 {:?}",
        percentile(&with_header, 0.5),
        percentile(&with_header, 0.99),
        percentile(&without_header, 0.5),
        percentile(&without_header, 0.99),
    );
    let (_, ready) = node.readyz().await;
    eprintln!("replica after the pairs: {}", ready["replicas"][0]);
    let (_, metrics) = node.get("/metrics").await;
    for line in metrics.lines().filter(|l| {
        l.starts_with("fv_db_replica_wait_seconds") || l.starts_with("fv_db_replica_lag")
    }) {
        eprintln!("{line}");
    }

    // A malformed position is refused before anything runs.
    let bad = node
        .gql(
            Some(&token),
            Some("yesterday"),
            READ_MODEL,
            json!({"id": id}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), Some("BAD_USER_INPUT"));
}

/// A standby whose replay is paused falls behind: reads that must see a newer write wait, then
/// go to the primary; past the lag bound it serves nothing; `/readyz` and `/metrics` show its
/// lag and state; stopped, it is skipped and the primary answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_or_stopped_standby_is_skipped() {
    let (primary, mut standby) = primary_and_standby(false).await;
    let node = Node::start(
        &primary.url("postgres"),
        &[standby.url("postgres")],
        |config| {
            config.replica_max_lag_ms = 300;
            config.replica_wait_ms = 50;
        },
    )
    .await;
    node.wait_replica("up").await;
    let (status, ready) = node.readyz().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["primary"], "up");
    assert_eq!(
        ready["replicas"][0]["name"],
        format!("127.0.0.1:{}/postgres", standby.port)
    );
    assert!(ready["replicas"][0]["lagSeconds"].is_number(), "{ready:#}");
    let (_, metrics) = node.get("/metrics").await;
    let gauge = format!(
        "fv_db_replica_lag_seconds{{replica=\"127.0.0.1:{}/postgres\"}}",
        standby.port
    );
    assert!(metrics.contains(&gauge), "no {gauge} in /metrics");

    let owner = node.register("owner").await;
    let reader = node.register("reader").await;
    let org = node.organization(&owner, "acme").await;
    let created = node
        .gql(Some(&owner), None, CREATE_MODEL, model_input(&org, "Plan"))
        .await;
    let id = created.data()["createModel"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    node.gql(
        Some(&owner),
        None,
        "mutation($input: AddMemberInput!) { addMember(input: $input) { role } }",
        json!({"input": {"organizationId": org, "email": "reader@example.com", "role": "VIEWER"}}),
    )
    .await
    .data();

    exec(&standby.url("postgres"), "SELECT pg_wal_replay_pause()").await;
    let mut version = 1;
    let mut write = async |name: &str| {
        let reply = node
            .gql(
                Some(&owner),
                None,
                UPDATE_MODEL,
                json!({"input": {"id": id, "version": version, "name": name}}),
            )
            .await;
        version = reply.data()["updateModel"]["version"]
            .as_i64()
            .expect("version");
        reply.lsn().expect("x-fv-lsn")
    };
    // Within the bound the standby still serves, but not a read that must see a newer write:
    // that one waits, then the primary answers it.
    let lsn = write("Paused 1").await;
    let read = node
        .gql(Some(&reader), Some(&lsn), READ_MODEL, json!({"id": id}))
        .await;
    assert_eq!(read.data()["model"]["name"], "Paused 1");
    // Past the bound: skipped, even for a caller who wrote nothing.
    node.wait_replica("lagging").await;
    let lsn = write("Paused 2").await;
    let read = node
        .gql(Some(&reader), None, READ_MODEL, json!({"id": id}))
        .await;
    assert_eq!(
        read.data()["model"]["name"],
        "Paused 2",
        "a lagging standby served a read"
    );
    let (status, ready) = node.readyz().await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        ready["replicas"][0]["lagSeconds"].as_f64().expect("lag") >= 0.3,
        "{ready:#}"
    );
    assert!(
        ready["replicas"][0]["lagBytes"].as_u64().expect("bytes") > 0,
        "{ready:#}"
    );

    exec(&standby.url("postgres"), "SELECT pg_wal_replay_resume()").await;
    node.wait_replica("up").await;
    let read = node
        .gql(Some(&reader), Some(&lsn), READ_MODEL, json!({"id": id}))
        .await;
    assert_eq!(read.data()["model"]["name"], "Paused 2");

    standby.crash();
    node.wait_replica("down").await;
    let (status, ready) = node.readyz().await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the primary still answers: {ready:#}"
    );
    assert!(ready["replicas"][0]["lagSeconds"].is_null());
    let read = node
        .gql(Some(&reader), None, READ_MODEL, json!({"id": id}))
        .await;
    assert_eq!(read.data()["model"]["name"], "Paused 2");
}

async fn serve(app: App) -> SocketAddr {
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

/// One mutation of the write load, as its client saw it.
struct Attempt {
    at: Instant,
    took: Duration,
    /// The model's ID when acknowledged, else the error code and `retryAfter`.
    outcome: Result<(String, String), (String, Option<i64>)>,
}

/// The primary crashes under a write load from two instances; the standby is promoted. While
/// the primary is down, mutations fail fast with a retryable `UNAVAILABLE` and reads are served
/// by the standby; after the promotion both instances write again without a restart (their URL
/// names both servers, `target_session_attrs=read-write`); every acknowledged write is there
/// (commits wait for the standby's flush: synchronous replication), and a subscriber on the
/// second instance received every acknowledged event, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promotion_under_write_load_loses_nothing_acknowledged() {
    capture_server_logs();
    let (mut primary, standby) = primary_and_standby(true).await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let replicas = [standby.url("postgres")];
    let a = Arc::new(Node::start(&url, &replicas, |c| c.db_pool_timeout_secs = 2).await);
    let b = Arc::new(Node::start(&url, &replicas, |c| c.db_pool_timeout_secs = 2).await);
    a.wait_replica("up").await;
    b.wait_replica("up").await;
    let token = a.register("owner").await;
    let org = a.organization(&token, "acme").await;

    let addr = serve(b.app.clone()).await;
    let mut ws = ws_connect(addr).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    send(
        &mut ws,
        // From the start of the organization's history: without `after` the stream starts at
        // the head as of when the server runs the subscription, and the writers below may
        // commit before that (a client that must miss nothing always names a position).
        json!({"id": "audit", "type": "subscribe", "payload": {
        "query": AUDIT,
        "variables": {"org": org, "after": "0"}}}),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    // One writer per instance, each one mutation at a time.
    let writers: Vec<_> = [(a.clone(), "A"), (b.clone(), "B")]
        .into_iter()
        .map(|(node, label)| {
            let (token, org, stop) = (token.clone(), org.clone(), stop.clone());
            tokio::spawn(async move {
                let mut attempts = Vec::new();
                let mut i = 0;
                while !AtomicBool::load(&stop, Ordering::Relaxed) {
                    let name = format!("Load {label}{i}");
                    let started = Instant::now();
                    let reply = node
                        .gql(Some(&token), None, CREATE_MODEL, model_input(&org, &name))
                        .await;
                    let outcome = match reply.body["data"]["createModel"]["id"].as_str() {
                        Some(id) => Ok((id.to_owned(), name)),
                        None => Err((
                            reply.code().unwrap_or("none").to_owned(),
                            reply.body["errors"][0]["extensions"]["retryAfter"].as_i64(),
                        )),
                    };
                    let failed = outcome.is_err();
                    attempts.push(Attempt {
                        at: started,
                        took: started.elapsed(),
                        outcome,
                    });
                    i += 1;
                    if failed {
                        // A client honouring `retryAfter` would wait longer; the test probes.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                attempts
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let crashed_at = Instant::now();
    primary.crash();
    // The standby keeps serving reads while nothing can write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for node in [&a, &b] {
        let (status, ready) = node.readyz().await;
        assert_eq!(status, StatusCode::OK, "{ready:#}");
        assert_eq!(ready["primary"], "down", "{ready:#}");
        let read = node
            .gql(Some(&token), None, "query($org: ID!) { organization(id: $org) { slug models(first: 5) { totalCount } } }", json!({"org": org}))
            .await;
        assert_eq!(read.data()["organization"]["slug"], "acme");
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let promoted_at = Instant::now();
    standby.promote();
    // Until both instances have written again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if both_write(&a, &b, &token, &org).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the instances did not write again after the promotion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut attempts = Vec::new();
    for writer in writers {
        attempts.extend(writer.await.expect("writer"));
    }
    attempts.sort_by_key(|attempt| attempt.at);

    let acknowledged: Vec<&str> = attempts
        .iter()
        .filter_map(|a| a.outcome.as_ref().ok().map(|(id, _)| id.as_str()))
        .collect();
    let acknowledged_names: Vec<&str> = attempts
        .iter()
        .filter_map(|a| a.outcome.as_ref().ok().map(|(_, name)| name.as_str()))
        .collect();
    let failures: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome.is_err()).collect();
    assert!(
        acknowledged.len() > 20,
        "only {} writes acknowledged",
        acknowledged.len()
    );
    assert!(
        !failures.is_empty(),
        "no write failed while the primary was down"
    );
    for failure in &failures {
        let (code, retry_after) = failure.outcome.as_ref().expect_err("a failure");
        assert_eq!(code, "UNAVAILABLE", "a write failed otherwise");
        assert!(retry_after.is_some(), "UNAVAILABLE without retryAfter");
    }
    let first_failure = failures.first().expect("a failure").at;
    let last_failure = failures.last().expect("a failure");
    let mut took: Vec<Duration> = failures.iter().map(|f| f.took).collect();
    took.sort();
    eprintln!(
        "failover: {} writes acknowledged, {} refused; first refusal returned {:?} after the crash, error window {:?} \
         (promotion {:?} after the crash), refusals took p50 {:?} max {:?}",
        acknowledged.len(),
        failures.len(),
        (failures[0].at + failures[0].took).saturating_duration_since(crashed_at),
        (last_failure.at + last_failure.took).saturating_duration_since(first_failure),
        promoted_at.saturating_duration_since(crashed_at),
        percentile(&took, 0.5),
        took.last().expect("a refusal"),
    );
    // Fail fast: once the monitor has seen the primary go, a refusal is immediate.
    assert!(
        percentile(&took, 0.5) < Duration::from_millis(200),
        "refusals are slow: {took:?}"
    );

    // Every acknowledged write is on the promoted server.
    let stored = names(&standby.url("postgres")).await;
    for name in &acknowledged_names {
        assert!(
            stored.iter().any(|s| s == name),
            "acknowledged model {name} is gone"
        );
    }

    // The subscriber on the second instance resumed across the promotion: every acknowledged
    // creation arrived, in order.
    let mut seen = std::collections::HashSet::new();
    let mut last: Option<u64> = None;
    let mut resubscriptions = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !acknowledged.iter().all(|id| seen.contains(*id)) {
        assert!(
            Instant::now() < deadline,
            "the subscriber missed events: {} of {} seen",
            acknowledged.iter().filter(|id| seen.contains(**id)).count(),
            acknowledged.len()
        );
        let Some(message) = patient_json(&mut ws).await else {
            let missing: Vec<&str> = acknowledged
                .iter()
                .zip(&acknowledged_names)
                .filter(|(id, _)| !seen.contains(**id))
                .map(|(_, name)| *name)
                .collect();
            let list = missing
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "SELECT e.id::text || ' ' || m.name || ' ' || e.created_at::text || ' xmin ' || e.xmin::text AS name \
                 FROM audit_events e JOIN financial_models m ON m.id = e.entity_id WHERE m.name IN ({list}) \
                 UNION ALL SELECT 'max ' || max(id)::text FROM audit_events"
            );
            eprintln!(
                "missing: {missing:?}; their events: {:?}",
                query_names(&standby.url("postgres"), &sql).await
            );
            panic!(
                "no message for 20 s: {} of {} acknowledged creations seen, last sequence {last:?}, {resubscriptions} resubscriptions",
                acknowledged.iter().filter(|id| seen.contains(**id)).count(),
                acknowledged.len()
            );
        };
        if message["type"] == "complete" {
            continue;
        }
        assert_eq!(message["type"], "next", "{message:#}");
        if message["payload"]["errors"][0]["extensions"]["code"] == "UNAVAILABLE" {
            // The documented way back after an outage longer than the server's retries: subscribe
            // again from the last sequence received.
            resubscriptions += 1;
            send(
                &mut ws,
                json!({"id": format!("audit-{resubscriptions}"), "type": "subscribe", "payload": {
                "query": AUDIT, "variables": {"org": org, "after": last.map(|l| l.to_string())}}}),
            )
            .await;
            continue;
        }
        let event = &message["payload"]["data"]["auditEvents"];
        let sequence: u64 = event["sequence"]
            .as_str()
            .unwrap_or_else(|| panic!("no sequence in {message:#}"))
            .parse()
            .expect("number");
        assert!(
            last.is_none_or(|last| sequence > last),
            "events out of order"
        );
        last = Some(sequence);
        if let Some(id) = event["entityId"].as_str() {
            seen.insert(id.to_owned());
        }
    }
    eprintln!(
        "failover: the subscriber on instance B received all {} acknowledged creations in order ({resubscriptions} resubscriptions with `after`)",
        acknowledged.len()
    );
}

/// The servers' warnings (and the replica monitor's news) in the captured output of the test
/// that caused them, printed when it fails: a failover test that fails must say what the server
/// saw. Global (the runtime's worker threads log too), installed once per test binary.
fn capture_server_logs() {
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn,finvision::db=info,finvision::domain::audit=info")
            .finish(),
    );
}

/// The next JSON message, waiting up to 20 s: across an outage the server retries a subscriber's
/// reads for a few seconds before it reports anything (`websocket::next_json` waits 5 s).
async fn patient_json(ws: &mut crate::websocket::Ws) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .ok()?
            .expect("the stream goes on")
            .expect("no websocket error");
        match message {
            Message::Text(text) => return Some(serde_json::from_str(text.as_str()).expect("json")),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Whether both instances acknowledge a write now.
async fn both_write(a: &Node, b: &Node, token: &str, org: &str) -> bool {
    for node in [a, b] {
        let reply = node
            .gql(
                Some(token),
                None,
                CREATE_MODEL,
                model_input(org, &format!("Probe {}", uuid::Uuid::new_v4())),
            )
            .await;
        if reply.body["data"]["createModel"]["id"].as_str().is_none() {
            eprintln!("probe: {}", reply.body);
            return false;
        }
    }
    true
}
