//! The test harness: a PostgreSQL server (the one named by `FV_TEST_DATABASE_URL`, else a private
//! cluster started once per test process), a migrated template database, and one database per
//! test created from it and dropped at the end, so tests run in parallel and leave nothing behind.
// Every module uses a different subset of the helpers.
#![allow(dead_code)]

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode, header},
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use finvision::{
    App,
    config::Config,
    db::{Db, PoolOptions, embedded::EmbeddedPostgres, migrate},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;

use crate::factories::UserBuilder;

/// The server and the per-process template database.
struct Server {
    admin_url: String,
    template: String,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();
static EMBEDDED: Mutex<Option<(EmbeddedPostgres, std::path::PathBuf)>> = Mutex::new(None);
static TEMPLATE_TO_DROP: Mutex<Option<(String, String)>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);
static DATABASES: Mutex<Option<Databases>> = Mutex::new(None);

/// Databases kept ready ahead of the tests that will ask for them.
const READY: usize = 2;
/// Used databases dropped together (concurrent drops share their checkpoints).
const DROPPING: usize = 8;

/// What the database service is asked.
enum Ask {
    /// A fresh database from the template: its name.
    Create(tokio::sync::oneshot::Sender<String>),
    /// A test is done with this database.
    Drop(String),
}

/// The database service: a thread of its own that creates test databases ahead of need and
/// drops them after use, so that neither a `CREATE DATABASE … TEMPLATE` (a copy of the
/// template) nor a `DROP DATABASE` (which waits for a checkpoint) is on a test's path.
struct Databases {
    asks: tokio::sync::mpsc::UnboundedSender<Ask>,
    thread: std::thread::JoinHandle<()>,
}

impl Databases {
    fn start(admin_url: String, template: String) -> Self {
        let (asks, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ask>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the database service's runtime");
            rt.block_on(async move {
                let create = |admin_url: String, template: String| async move {
                    let name = format!(
                        "fv_test_{}_{}",
                        std::process::id(),
                        COUNTER.fetch_add(1, Ordering::Relaxed)
                    );
                    admin_exec(
                        &admin_url,
                        &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                    )
                    .await;
                    name
                };
                let mut ready = tokio::task::JoinSet::new();
                for _ in 0..READY {
                    ready.spawn(create(admin_url.clone(), template.clone()));
                }
                let mut dropping = tokio::task::JoinSet::new();
                let mut used = Vec::new();
                while let Some(ask) = rx.recv().await {
                    match ask {
                        Ask::Create(reply) => {
                            let name = match ready.join_next().await {
                                Some(created) => created.expect("create a test database"),
                                None => create(admin_url.clone(), template.clone()).await,
                            };
                            ready.spawn(create(admin_url.clone(), template.clone()));
                            let _ = reply.send(name);
                        }
                        Ask::Drop(name) => {
                            // In batches: the drops of a batch run at once and share their
                            // checkpoints, where one by one each would wait for its own.
                            used.push(name);
                            if used.len() >= DROPPING && dropping.is_empty() {
                                for name in used.drain(..) {
                                    dropping.spawn(drop_database(admin_url.clone(), name));
                                }
                            }
                            while dropping.try_join_next().is_some() {}
                        }
                    }
                }
                // Closed at exit: the rest, and the databases made ahead, are dropped too.
                for name in used {
                    dropping.spawn(drop_database(admin_url.clone(), name));
                }
                while let Some(created) = ready.join_next().await {
                    if let Ok(name) = created {
                        dropping.spawn(drop_database(admin_url.clone(), name));
                    }
                }
                while dropping.join_next().await.is_some() {}
            });
        });
        Self { asks, thread }
    }
}

/// `DROP DATABASE … WITH (FORCE)`, ignoring failures (the server may be going away).
async fn drop_database(admin_url: String, name: String) {
    use diesel_async::RunQueryDsl;
    if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url).await {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// Replace the database of a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > base.find("//").map_or(0, |j| j + 1) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin_exec(admin_url: &str, sql: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .expect("connect to the test server");
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// At process exit: drop the template and stop the private cluster. Registered with `atexit`
/// because statics are never dropped.
extern "C" fn cleanup_at_exit() {
    if let Some(Databases { asks, thread }) = DATABASES.lock().ok().and_then(|mut d| d.take()) {
        drop(asks);
        let _ = thread.join();
    }
    if let Some((admin_url, template)) = TEMPLATE_TO_DROP.lock().ok().and_then(|mut t| t.take()) {
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use diesel_async::RunQueryDsl;
                let mut conn = AsyncPgConnection::establish(&admin_url).await.ok()?;
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{template}\" WITH (FORCE)"
                ))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
    if let Some((mut pg, dir)) = EMBEDDED.lock().ok().and_then(|mut e| e.take()) {
        pg.stop_blocking();
        drop(pg);
        let _ = std::fs::remove_dir_all(dir);
    }
}

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let admin_url = match std::env::var("FV_TEST_DATABASE_URL") {
                Ok(url) if !url.is_empty() => url,
                _ => {
                    let dir = std::env::temp_dir().join(format!(
                        "fv-test-pg-{}-{}",
                        std::process::id(),
                        uuid::Uuid::new_v4().simple()
                    ));
                    std::fs::create_dir_all(&dir).expect("create the test cluster directory");
                    let pg = EmbeddedPostgres::start(&dir)
                        .await
                        .expect("start a private PostgreSQL for the tests");
                    let url = pg.admin_url();
                    *EMBEDDED.lock().expect("lock") = Some((pg, dir));
                    url
                }
            };
            let template = format!(
                "fv_tpl_{}_{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            );
            admin_exec(&admin_url, &format!("CREATE DATABASE \"{template}\"")).await;
            *TEMPLATE_TO_DROP.lock().expect("lock") = Some((admin_url.clone(), template.clone()));

            // SAFETY: registering a plain `extern "C" fn` with the C runtime.
            unsafe { libc::atexit(cleanup_at_exit) };
            migrate::run(
                &with_database(&admin_url, &template),
                migrate::Direction::Up,
            )
            .await
            .expect("migrate the template");
            // The servers under test connect as the application role, as in production: every
            // API test runs under its grants and row-level security.
            admin_exec(
                &admin_url,
                &format!("ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'"),
            )
            .await;
            // Only now: copies of the template are made from here on.
            *DATABASES.lock().expect("lock") =
                Some(Databases::start(admin_url.clone(), template.clone()));
            Server {
                admin_url,
                template,
            }
        })
        .await
}

/// The role the servers under test connect as (created by the migrations) and its password.
pub const APP_ROLE: &str = "finvision_app";
const APP_PASSWORD: &str = "finvision-app-test";

/// `url` with the application role's credentials instead of the superuser's.
pub fn as_app_role(url: &str) -> String {
    let mut url = url::Url::parse(url).expect("a PostgreSQL URL");
    url.set_username(APP_ROLE).expect("a URL with credentials");
    url.set_password(Some(APP_PASSWORD))
        .expect("a URL with credentials");
    url.to_string()
}

/// A fresh, migrated, empty database; dropped (with its connections) after this value is, by
/// the database service.
pub struct TestDb {
    pub name: String,
    /// As the superuser, who owns the tables (to inspect or tamper with data behind the API).
    pub url: String,
    /// As the application role, which the servers under test connect as.
    pub app_url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let server = server().await;
        let (reply, name) = tokio::sync::oneshot::channel();
        databases_ask(Ask::Create(reply));
        let name = name.await.expect("the database service answers");
        let url = with_database(&server.admin_url, &name);
        Self {
            app_url: as_app_role(&url),
            url,
            name,
        }
    }

    /// An empty database (no schema, no migrations) on the test server: where a restore goes.
    /// Dropped like the others.
    pub async fn empty() -> Self {
        let server = server().await;
        let name = format!(
            "fv_empty_{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        admin_exec(&server.admin_url, &format!("CREATE DATABASE \"{name}\"")).await;
        let url = with_database(&server.admin_url, &name);
        Self {
            app_url: as_app_role(&url),
            url,
            name,
        }
    }

    /// A connection as the server's superuser (to inspect or tamper with data behind the API).
    pub async fn superuser_conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Dropped by the database service while the tests go on (`Databases`).
        databases_ask(Ask::Drop(std::mem::take(&mut self.name)));
    }
}

/// Send `ask` to the database service.
fn databases_ask(ask: Ask) {
    let databases = DATABASES.lock().expect("lock");
    let databases = databases.as_ref().expect("the database service runs");
    assert!(
        databases.asks.send(ask).is_ok(),
        "the database service stopped"
    );
}

/// A GraphQL response as the client sees it.
#[derive(Debug, Clone)]
pub struct Gql {
    pub status: StatusCode,
    pub body: Value,
}

impl Gql {
    /// `data`, asserting there are no errors.
    #[track_caller]
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none_or(Value::is_null),
            "unexpected errors: {:#}",
            self.body
        );
        &self.body["data"]
    }

    /// The errors (empty when none).
    pub fn errors(&self) -> Vec<Value> {
        self.body
            .get("errors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The code of the first error, asserting there is one.
    #[track_caller]
    pub fn code(&self) -> String {
        let errors = self.errors();
        assert!(!errors.is_empty(), "expected an error, got {:#}", self.body);
        errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_owned()
    }

    /// The `extensions.field` of the first error.
    pub fn field(&self) -> Option<String> {
        self.errors()
            .first()
            .and_then(|e| e["extensions"]["field"].as_str().map(str::to_owned))
    }
}

/// A signed-in test user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

/// The application over its own database, driven through its router.
pub struct TestApp {
    pub app: App,
    pub router: Router,
    pub db: TestDb,
    /// The app's own pool (a clone of the one it was built over), for tests that hold or use its
    /// connections behind the API: the core does not hand out its pool.
    pub pool: Db,
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// An app whose every request authenticates against the database
    /// (`FV_CALLER_CACHE_SIZE=0`): for statement counts that pin "authentication included", and
    /// for tests that stand in for time passing by backdating rows in SQL (with the cache on,
    /// such a change reaches the instances only through their notices: `caller_cache.rs`).
    pub async fn spawn_uncached() -> Self {
        Self::spawn_with(|config| config.caller_cache_size = 0).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(TestDb::new().await, configure).await
    }

    /// An app over `db` (e.g. a database a restore filled).
    pub async fn spawn_on(db: TestDb, configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_database(&db.app_url);
        config.db_pool_size = 8;
        // Uploads stay in memory unless a test chooses a store: nothing is written to the disk.
        config.object_store_url = Some("memory://".into());
        configure(&mut config);
        let pool = Db::connect(
            &db.app_url,
            &PoolOptions {
                max_size: config.db_pool_size,
                connection_timeout: Duration::from_secs(config.db_pool_timeout_secs),
            },
        )
        .await
        .expect("pool");
        let app = App::new(config, pool.clone()).expect("app");
        let router = app.router();
        Self {
            app,
            router,
            db,
            pool,
        }
    }

    /// Send a raw request through the router.
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.expect("router");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    /// POST one GraphQL operation.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.post_json(token, json!({"query": query, "variables": variables}))
            .await
    }

    /// POST any JSON body to `/graphql`.
    pub async fn post_json(&self, token: Option<&str>, body: Value) -> Gql {
        let mut request =
            Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let (status, _, bytes) = self
            .send(request.body(Body::from(body.to_string())).expect("request"))
            .await;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
        Gql { status, body }
    }

    /// Statements sent by the app's pool so far.
    pub fn statements(&self) -> u64 {
        self.app.core().statement_count()
    }

    /// A user named `name` (`<name>@example.com`), signed in: [`UserBuilder`]'s fast path (no
    /// `register`, no argon2 per user).
    pub async fn user(&self, name: &str) -> TestUser {
        UserBuilder::new(name).build(self).await
    }

    /// Register a user through the API's `register` mutation and return it signed in: for tests
    /// about registration and what it writes (its audit event, its notice).
    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.com");
        let res = self
            .gql(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }",
                json!({"input": {"email": email, "password": PASSWORD, "displayName": name}}),
            )
            .await;
        let data = &res.data()["register"];
        TestUser {
            id: data["user"]["id"].as_str().expect("id").to_owned(),
            email,
            token: data["token"].as_str().expect("token").to_owned(),
        }
    }

    /// Create an organization owned by `owner`; returns its id.
    pub async fn organization(&self, owner: &TestUser, slug: &str) -> String {
        let res = self
            .gql(
                Some(&owner.token),
                "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }",
                json!({"input": {"name": slug, "slug": slug}}),
            )
            .await;
        res.data()["createOrganization"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Add `member` to the organization with `role`, as `by`.
    pub async fn add_member(&self, by: &TestUser, org: &str, member: &TestUser, role: &str) {
        let res = self
            .gql(
                Some(&by.token),
                "mutation($input: AddMemberInput!) { addMember(input: $input) { role } }",
                json!({"input": {"organizationId": org, "email": member.email, "role": role}}),
            )
            .await;
        assert_eq!(res.data()["addMember"]["role"], role);
    }

    /// Rows of `audit_events` as (action, entity_type), oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use finvision::db::schema::audit_events::dsl::*;
        let mut conn = self.db.superuser_conn().await;
        audit_events
            .order(id.asc())
            .select(action)
            .load::<String>(&mut conn)
            .await
            .expect("audit rows")
    }
}

/// One row of `audit_events` as the tests inspect it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub action: String,
    pub entity_type: String,
    pub organization_id: Option<uuid::Uuid>,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
}

impl TestApp {
    /// Every row of `audit_events`, oldest first.
    pub async fn audit_rows(&self) -> Vec<AuditRow> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use finvision::db::schema::audit_events::dsl::*;
        let mut conn = self.db.superuser_conn().await;
        audit_events
            .order(id.asc())
            .select((action, entity_type, organization_id, old_values, new_values))
            .load::<(
                String,
                String,
                Option<uuid::Uuid>,
                Option<Value>,
                Option<Value>,
            )>(&mut conn)
            .await
            .expect("audit rows")
            .into_iter()
            .map(
                |(action_, entity_type_, organization_id_, old_values_, new_values_)| AuditRow {
                    action: action_,
                    entity_type: entity_type_,
                    organization_id: organization_id_,
                    old_values: old_values_,
                    new_values: new_values_,
                },
            )
            .collect()
    }

    /// Make the account with `email` a superadmin (behind the API).
    pub async fn make_superadmin(&self, email: &str) {
        use diesel_async::RunQueryDsl;
        let mut conn = self.db.superuser_conn().await;
        diesel::sql_query("UPDATE users SET is_superadmin = true WHERE email = $1")
            .bind::<diesel::sql_types::Text, _>(email)
            .execute(&mut conn)
            .await
            .expect("make superadmin");
    }
}

#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

impl TestApp {
    /// Run `sql` as the superuser and return its column `t` (cast it to text), row by row.
    pub async fn sql_texts(&self, sql: &str) -> Vec<String> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.db.superuser_conn().await;
        diesel::sql_query(sql)
            .load::<TextRow>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|row| row.t)
            .collect()
    }

    /// Run a statement as the superuser; returns the rows affected.
    pub async fn sql_exec(&self, sql: &str) -> usize {
        use diesel_async::RunQueryDsl;
        let mut conn = self.db.superuser_conn().await;
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `SELECT count(*) FROM <table>` as the superuser.
    pub async fn count_rows(&self, table: &str) -> i64 {
        self.sql_texts(&format!("SELECT count(*)::text AS t FROM {table}"))
            .await[0]
            .parse()
            .expect("count")
    }
}

/// Wait until `done` holds, checking every 20 ms, for at most 10 s: how a test waits for
/// something that happens in the background (a listener connecting, a notice arriving).
pub async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 10 s for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// insta settings for snapshotting a payload: the IDs the test knows are named (`("…", "ann")`
/// shows as `[ann]`, so the snapshot still says whose ID it is), other IDs become `[id]` and
/// timestamps `[timestamp]`. Use: `redactions(&[(&ann.id, "ann")]).bind(|| assert_json_snapshot!(…))`.
pub fn redactions(names: &[(&str, &str)]) -> insta::Settings {
    let names: Vec<(String, String)> = names
        .iter()
        .map(|(id, name)| ((*id).to_owned(), format!("[{name}]")))
        .collect();
    let mut settings = insta::Settings::clone_current();
    settings.add_redaction(
        ".**.id",
        insta::dynamic_redaction(move |value, _| {
            let known = value
                .as_str()
                .and_then(|v| names.iter().find(|(id, _)| id == v));
            match known {
                Some((_, name)) => insta::internals::Content::from(name.clone()),
                None => insta::internals::Content::from("[id]"),
            }
        }),
    );
    for key in [
        "createdAt",
        "updatedAt",
        "lastLoginAt",
        "expiresAt",
        "occurredAt",
        "revokedAt",
    ] {
        settings.add_redaction(&format!(".**.{key}"), "[timestamp]");
    }
    settings
}

/// Node.js is part of the suite's toolchain (`.ci/run` installs it): a test that needs it fails,
/// naming the remedy, rather than skipping.
pub fn require_node() {
    let node = std::process::Command::new("node")
        .args(["-p", "process.versions.node.split('.')[0]"])
        .output();
    let major: u32 = match node {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        _ => panic!(
            "Node.js is not installed: the tests that run JavaScript clients and browsers need \
             it. Install it with `apt-get install nodejs npm` (.ci/run does)"
        ),
    };
    assert!(
        major >= 20,
        "Node.js {major} is too old: the tests that run JavaScript clients and browsers need \
         Node.js 20 or newer (Vite, playwright-core, graphql-ws)"
    );
}

/// `npm ci` in `dir` unless every package of `needed` is already in its `node_modules` (kept
/// between runs, so only the first run pays for the install). One install at a time: tests run
/// in parallel and two of them may share a directory.
pub fn npm_ci(dir: &std::path::Path, needed: &[&str]) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let modules = dir.join("node_modules");
    if needed.iter().all(|name| modules.join(name).exists()) {
        return;
    }
    let output = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .expect("npm runs (apt-get install npm)");
    assert!(
        output.status.success(),
        "npm ci in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
