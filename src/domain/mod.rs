//! The core: rows, loaders, rules and transactions. It knows nothing of GraphQL.

pub mod audit;
pub mod auth;
pub mod limits;
pub mod loader;
pub mod modelling;
pub mod names;
pub mod organizations;
pub mod reports;
pub mod search;
pub mod seed;
pub mod storage;
pub(crate) mod text_enum;
pub mod webhooks;

use std::{sync::Arc, time::Duration};

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};

pub use crate::db::{
    CommitLsn, Lsn, ReplicaState, ReplicaStatus, RequestStats, Route, SlowStatement,
    stats::propagate as propagate_request,
};
use crate::{config::Config, db::Db, error::AppResult};

pub use auth::password::PasswordHasher;
pub use loader::PgLoader;
pub use storage::FileStore;

/// Settings the core's rules depend on.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Whether `register` is open.
    pub registration: bool,
    /// How long a session lives.
    pub session_ttl: Duration,
    /// How large a saved formula may be.
    pub formula_limits: modelling::formula::FormulaLimits,
    /// What one request may spend on evaluation (cells × formula nodes).
    pub eval_budget: u64,
    /// How long a session may go unused before it stops working (`None`: no idle limit).
    pub session_idle: Option<Duration>,
    /// Accounts one client address (an IPv6 /64) may register per hour.
    pub register_per_address_per_hour: u32,
    /// Failed sign-ins allowed per account and per address.
    pub sign_in: auth::accounts::SignInLimits,
    /// Webhook delivery (`FV_WEBHOOK_*`).
    pub webhooks: webhooks::WebhookSettings,
}

/// Everything a domain operation needs: the database, the password hasher, the file store, the
/// settings.
/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct Core {
    /// The pool, for the domain alone: the face reaches data through loaders and services, and
    /// operations through the narrow methods below ([`Core::ping`], [`Core::statement_count`]).
    pub(in crate::domain) db: Db,
    pub(crate) hasher: PasswordHasher,
    pub(crate) settings: Arc<CoreSettings>,
    /// API key uses noted since the last flush (`auth::usage::flush_usage`).
    pub(crate) api_key_usage: auth::usage::SharedKeyUsage,
    /// Session uses noted since the last flush (the same mechanism as the keys').
    pub(crate) session_usage: auth::usage::SharedKeyUsage,
    /// Serialises sign-in attempts on one account (and registrations from one address) inside
    /// this instance, before they take a pooled connection (`auth::throttle`).
    pub(crate) attempt_gate: Arc<auth::throttle::AttemptGate>,
    /// This instance's side of the audit fan-out (fed by `AuditStream::listen`), whose
    /// connection also carries the caller cache's invalidations.
    pub(crate) audit_stream: audit::stream::AuditStream,
    /// Credentials resolved recently (`auth::cache`).
    pub(crate) caller_cache: auth::cache::CallerCache,
    pub(crate) files: FileStore,
    /// Runs scenario evaluations off the async workers, a bounded number at a time.
    pub(crate) evaluator: modelling::evaluation::Evaluator,
    /// Report jobs waiting for a worker (`reports::jobs`).
    pub(crate) reports: reports::ReportQueue,
}

impl Core {
    /// Build the core over a database handle; fails when the file store cannot be opened.
    pub fn new(db: Db, config: &Config) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let permits = config.max_concurrent_hashes.unwrap_or(cores);
        db.set_statement_timeout(std::time::Duration::from_millis(
            config.statement_timeout_ms,
        ));
        db.set_transaction_pooler(config.db_pgbouncer);
        let db = if config.database_replica_urls.is_empty() {
            db
        } else {
            // Replicas of the embedded cluster would be replicas of nothing an operator runs.
            let primary = config.database_url.as_deref().ok_or_else(|| {
                anyhow::anyhow!("FV_DATABASE_REPLICA_URLS needs DATABASE_URL (the primary)")
            })?;
            db.with_replicas(
                primary,
                &config.database_replica_urls,
                &crate::db::PoolOptions {
                    max_size: config.db_pool_size,
                    connection_timeout: Duration::from_secs(config.db_pool_timeout_secs),
                },
                crate::db::ReplicaOptions {
                    max_lag: Duration::from_millis(config.replica_max_lag_ms),
                    wait: Duration::from_millis(config.replica_wait_ms),
                    poll: Duration::from_millis(config.replica_poll_ms.max(10)),
                    read_your_writes: Duration::from_secs(config.read_your_writes_secs),
                },
            )
        };
        let caller_cache = auth::cache::CallerCache::new(
            config.caller_cache_size,
            Duration::from_secs(config.caller_cache_ttl_secs),
        );
        Ok(Self {
            db,
            hasher: PasswordHasher::new(permits),
            settings: Arc::new(CoreSettings {
                registration: config.registration,
                session_ttl: config.session_ttl(),
                formula_limits: modelling::formula::FormulaLimits {
                    max_length: config.max_formula_length,
                    max_nodes: config.max_formula_nodes,
                    max_args: config.max_formula_args,
                },
                eval_budget: config.eval_budget,
                session_idle: config
                    .session_idle_hours
                    .map(|h| Duration::from_secs(u64::from(h) * 3600)),
                register_per_address_per_hour: config.register_per_address_per_hour,
                sign_in: auth::accounts::SignInLimits {
                    per_account: config.login_failures_per_account,
                    per_address: config.login_failures_per_address,
                },
                webhooks: config.webhook_settings(),
            }),
            api_key_usage: Default::default(),
            session_usage: Default::default(),
            attempt_gate: Default::default(),
            audit_stream: audit::stream::AuditStream::new()
                .with_handler(Arc::new(caller_cache.clone())),
            caller_cache,
            files: FileStore::open(config)?,
            evaluator: modelling::evaluation::Evaluator::new(
                config.max_concurrent_evaluations.unwrap_or(cores),
            ),
            reports: reports::ReportQueue::new(config.report_queue),
        })
    }

    /// Run `body` as one transaction on a pooled connection: every write of the core goes
    /// through here (or through `auth::cache::transaction`, which also settles the caller cache),
    /// with its audit events written inside it (`audit::Trail`).
    pub(crate) async fn transaction<R, F>(&self, body: F) -> AppResult<R>
    where
        R: Send,
        F: for<'r> TransactionBody<'r, R> + Send,
    {
        let mut conn = self.db.conn_for_transaction().await?;
        let out = in_transaction(&self.db, &mut conn, body).await?;
        self.db.note_commit(&mut conn).await;
        Ok(out)
    }

    /// This core for the caller of one request: its connections see only the rows of the
    /// caller's organizations (row-level security as a second line behind the API's checks).
    #[must_use]
    pub fn for_viewer(&self, viewer: &auth::Viewer) -> Self {
        Self {
            db: self.db.for_caller(viewer.db_caller()),
            ..self.clone()
        }
    }

    /// This core for the server's own work (credential lookups): its connections see every
    /// organization.
    #[must_use]
    pub fn for_server(&self) -> Self {
        Self {
            db: self.db.for_caller(crate::db::DbCaller::All),
            ..self.clone()
        }
    }

    /// Name `viewer` the caller of this core's connections and of every clone's (the request's
    /// loaders), from their next checkout: after the request read its caller anew.
    pub fn set_viewer(&self, viewer: &auth::Viewer) {
        self.db.set_caller(viewer.db_caller());
    }

    /// This core for one request: its reads follow `route` (a query's go to a replica that
    /// has replayed what the caller wrote) and its commits are noted there.
    #[must_use]
    pub fn for_request(&self, route: Route) -> Self {
        Self {
            db: self.db.for_request(route),
            ..self.clone()
        }
    }

    /// The last commit of a credential (a user's sessions, or an API key) on this instance within
    /// the read-your-writes window; `None` without replicas.
    pub fn recent_write(&self, credential: uuid::Uuid) -> Option<Lsn> {
        self.db.recent_write(credential)
    }

    /// Whether reads may go to replicas (FV_DATABASE_REPLICA_URLS).
    pub fn has_replicas(&self) -> bool {
        self.db.has_replicas()
    }

    /// Whether the primary answers and what is known of each replica (`None` without replicas).
    pub fn replica_statuses(&self) -> Option<(bool, Vec<ReplicaStatus>)> {
        self.db.replica_statuses()
    }

    /// `user_id` signed in during this request: their next requests on this instance see what
    /// the request wrote, as if they had made it with their new session.
    pub fn remember_writes_of(&self, user_id: uuid::Uuid) {
        self.db.note_credential(user_id);
    }

    /// Whether the database answers a trivial statement (`GET /readyz`; the caller bounds the
    /// wait).
    pub async fn ping(&self) -> AppResult<()> {
        let mut conn = self.db.conn().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        Ok(())
    }

    /// Whether row-level security does not apply to the role the server connects as (a
    /// superuser, or a role with `BYPASSRLS`): the server still works, without the net.
    pub async fn bypasses_row_level_security(&self) -> AppResult<bool> {
        #[derive(diesel::QueryableByName)]
        struct Bypass {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            bypass: bool,
        }
        let mut conn = self.db.conn().await?;
        let row: Bypass = diesel::sql_query(
            "SELECT (rolsuper OR rolbypassrls) AS bypass FROM pg_roles WHERE rolname = current_user",
        )
        .get_result(&mut conn)
        .await?;
        Ok(row.bypass)
    }

    /// Statements sent through the pool since it was built (`/metrics`, and the tests that prove
    /// a request's statement count does not grow with its rows).
    pub fn statement_count(&self) -> u64 {
        self.db.statements_executed()
    }

    /// Connections open and idle (`/metrics`).
    pub fn pool_state(&self) -> (u32, u32) {
        self.db.pool_state()
    }

    /// The password hasher (its counters measure the argon2 work done).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The audit fan-out (start its listener with [`audit::stream::AuditStream::listen`]).
    pub fn audit_stream(&self) -> &audit::stream::AuditStream {
        &self.audit_stream
    }

    /// The report queue (its counts for `/metrics`; pausing it).
    pub fn report_queue(&self) -> &reports::ReportQueue {
        &self.reports
    }

    /// The caller cache (its size, tests).
    pub fn caller_cache(&self) -> &auth::cache::CallerCache {
        &self.caller_cache
    }

    /// A fresh loader source; the GraphQL face wraps it in one `DataLoader` per request.
    pub fn loader(&self) -> PgLoader {
        PgLoader::new(self.db.clone())
    }

    /// A loader source for a long-lived connection: every lookup reads the database.
    pub fn unprimed_loader(&self) -> PgLoader {
        PgLoader::unprimed(self.db.clone())
    }
}

/// Run `body` as one transaction on `conn`, opened for `db`'s caller (`BEGIN` and the caller's
/// setting in one round trip, [`Db::begin`]): diesel-async's `AsyncConnection::transaction`,
/// with that opening.
pub(crate) async fn in_transaction<R, F>(
    db: &Db,
    conn: &mut AsyncPgConnection,
    body: F,
) -> AppResult<R>
where
    R: Send,
    F: for<'r> TransactionBody<'r, R> + Send,
{
    db.begin(conn).await?;
    match body(&mut *conn).await {
        Ok(out) => match AnsiTransactionManager::commit_transaction(conn).await {
            Ok(()) => Ok(out),
            Err(err) => {
                let _ = AnsiTransactionManager::rollback_transaction(conn).await;
                Err(err.into())
            }
        },
        Err(err) => {
            let _ = AnsiTransactionManager::rollback_transaction(conn).await;
            Err(err)
        }
    }
}

/// The body of a transaction (diesel-async's own bound, spelled out so that a function can pass
/// a closure on: its future must be `Send` for every connection borrow).
pub trait TransactionBody<'r, R>:
    AsyncFnOnce(&'r mut AsyncPgConnection) -> AppResult<R>
    + FnOnce(&'r mut AsyncPgConnection) -> <Self as TransactionBody<'r, R>>::Fut
{
    /// The body's future.
    type Fut: Future<Output = AppResult<R>> + Send;
}

impl<'r, F, Fut, R> TransactionBody<'r, R> for F
where
    F: AsyncFnOnce(&'r mut AsyncPgConnection) -> AppResult<R>
        + FnOnce(&'r mut AsyncPgConnection) -> Fut,
    Fut: Future<Output = AppResult<R>> + Send,
{
    type Fut = Fut;
}
