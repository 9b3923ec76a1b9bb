//! The connection pool: bb8 over diesel-async, with a statement counter and a
//! `statement_timeout` on every connection.

use std::{
    marker::PhantomData,
    ops::{Deref, DerefMut},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use diesel::connection::CacheSize;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, bb8},
};
use futures_util::FutureExt;

use super::caller::{CallerCell, DbCaller};
use super::replicas::{Lsn, ReplicaOptions, ReplicaSet, ReplicaStatus};
use super::stats::StatementInstrumentation;
use crate::error::{AppError, AppResult};

/// A bb8 pool of diesel-async connections (the primary's, or one replica's).
pub(crate) type ConnPool = bb8::Pool<AsyncPgConnection>;

/// A pooled connection. Behind a transaction pooler (FV_DB_PGBOUNCER) one from [`Db::conn`]
/// is pinned: it runs in a transaction opened at checkout and committed when it is dropped, so
/// that each statement's Parse, Bind and Close reach the same server connection (see
/// [`TransactionPooler`]).
pub struct PgConn<'a> {
    /// Always `Some` but in `drop`, which hands it to the committing task.
    conn: Option<bb8::PooledConnection<'static, AsyncPgConnection>>,
    pinned: bool,
    _db: PhantomData<&'a Db>,
}

impl Deref for PgConn<'_> {
    type Target = AsyncPgConnection;

    #[allow(clippy::expect_used, reason = "only `drop` takes the connection")]
    fn deref(&self) -> &AsyncPgConnection {
        self.conn
            .as_ref()
            .expect("a live PgConn holds its connection")
    }
}

impl DerefMut for PgConn<'_> {
    #[allow(clippy::expect_used, reason = "only `drop` takes the connection")]
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        self.conn
            .as_mut()
            .expect("a live PgConn holds its connection")
    }
}

impl Drop for PgConn<'_> {
    fn drop(&mut self) {
        if !self.pinned {
            return;
        }
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Outside a runtime the connection goes back with its transaction open, and the pool
        // discards it: correct, only slower.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The pinned transaction only read (writes go through `Db::conn_for_transaction`) or
        // wrote what may land late (API key usage): it ends after the response, off its path.
        runtime.spawn(async move {
            if AnsiTransactionManager::commit_transaction(&mut *conn)
                .await
                .is_err()
            {
                let _ = AnsiTransactionManager::rollback_transaction(&mut *conn).await;
            }
        });
    }
}

/// Counts the statements every connection of one pool sends (through each connection's
/// [`StatementInstrumentation`], which also counts them per request). Tests read it to prove
/// that a request's statement count grows with the query's depth, not with the number of rows.
#[derive(Clone, Default)]
struct StatementCounter(Arc<AtomicU64>);

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Maximum open connections.
    pub max_size: u32,
    /// How long a request waits for a free connection before failing cleanly.
    pub connection_timeout: Duration,
}

/// The `statement_timeout` every new connection gets, in milliseconds (0: none). Shared by the
/// pool's set-up closure and [`Db::set_statement_timeout`], which the core calls with the
/// configured value before serving anything.
#[derive(Clone, Default)]
struct StatementTimeout(Arc<AtomicU64>);

/// Whether new connections go through a transaction pooler (FV_DB_PGBOUNCER), set like
/// [`StatementTimeout`]. Such a pooler may hand each transaction, and each statement outside
/// one, to a different server connection: a statement prepared on one is unknown to the next,
/// and a session setting lands on whichever server happened to run it. diesel-async always
/// prepares named statements (Parse, then Bind in the next round trip, then Close), so behind
/// one every statement must run inside a transaction, which the pooler keeps on one server
/// connection: the cache is off (a cached statement outlives its transaction) and reads are
/// pinned ([`PgConn`]).
#[derive(Clone, Default)]
struct TransactionPooler(Arc<AtomicBool>);

/// Where one request's reads go and where its commits are noted (see [`Db::for_request`]).
#[derive(Clone, Default)]
pub struct Route {
    /// Query operations: reads go to a replica that has replayed `floor`.
    pub replicas: bool,
    /// The position the request's reads must see: the client's `x-fv-lsn`, the credential's
    /// recent write, or an earlier operation's commit in the same HTTP request.
    pub floor: Option<Lsn>,
    /// The session or API key, whose commits this instance remembers for the read-your-writes
    /// window.
    pub credential: Option<uuid::Uuid>,
    /// The request's last commit position, for the response (`x-fv-lsn`).
    pub commits: Arc<CommitLsn>,
}

/// The highest commit position of a request (none yet: 0).
#[derive(Default)]
pub struct CommitLsn(AtomicU64);

impl CommitLsn {
    /// The highest commit noted, if any.
    pub fn get(&self) -> Option<Lsn> {
        Some(Lsn(self.0.load(Ordering::Relaxed))).filter(|lsn| lsn.0 > 0)
    }

    fn note(&self, lsn: Lsn) {
        self.0.fetch_max(lsn.0, Ordering::Relaxed);
    }
}

/// The database handle of the core: the primary's pool and its statement counter, the replicas
/// if any, and the route of the request it serves. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: ConnPool,
    statements: StatementCounter,
    statement_timeout: StatementTimeout,
    transaction_pooler: TransactionPooler,
    replicas: Option<Arc<ReplicaSet>>,
    /// The replicas' pools' counters: [`Db::statements_executed`] counts every statement sent.
    replica_statements: Arc<Vec<StatementCounter>>,
    route: Option<Arc<Route>>,
    /// Whose rows the connections lent by this handle may see (row-level security): every
    /// organization for the server's own work, the caller's for a request's handle.
    caller: CallerCell,
}

/// Pools whose every connection gets the same set-up: the statement counter, the statement
/// timeout and the transaction pooler's rules (set once, before any connection is pooled).
fn manager(
    url: &str,
    counter: StatementCounter,
    timeout: StatementTimeout,
    pooler: TransactionPooler,
) -> AsyncDieselConnectionManager<AsyncPgConnection> {
    let mut config = ManagerConfig::default();
    // On checkout, only what the connection already knows: an open transaction, or a socket
    // the server closed (a restart, a failover). A verifying `SELECT 1` per checkout would
    // double the round trips of small requests; a dead connection must not be lent, or every
    // pooled one fails a request after a failover.
    config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        let broken = diesel_async::pooled_connection::PoolableConnection::is_broken(conn);
        async move {
            if broken {
                Err(diesel::result::Error::BrokenTransactionManager)
            } else {
                Ok(())
            }
        }
        .boxed()
    }));
    config.custom_setup = Box::new(move |url| {
        let counter = counter.clone();
        let timeout_ms = timeout.0.load(Ordering::Relaxed);
        let behind_pooler = pooler.0.load(Ordering::Relaxed);
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            if behind_pooler {
                // Each statement is prepared, run and closed inside its transaction (see
                // `TransactionPooler`; the README's "Behind PgBouncer" has the findings).
                conn.set_prepared_statement_cache_size(CacheSize::Disabled);
            }
            // A runaway statement holds a connection and its locks; the server cancels it
            // (SQLSTATE 57014, reported as `Unavailable`). Session state, so once per
            // connection, and before the counter so tests count only the application's own.
            // Behind a transaction pooler the server's own setting applies instead (`ALTER
            // ROLE … SET statement_timeout`, or PgBouncer's `query_timeout`).
            //
            // Generic plans: the application's statements are prepared once per connection, and
            // PostgreSQL would otherwise plan most of them again on every execution (its choice
            // between custom and generic plans keeps the custom one for `= ANY($1)` lookups),
            // along with the InitPlans of every row-level security policy they meet. With the
            // plans kept, the benchmark's requests cost the database 22-67 % fewer instructions
            // at full scale (callgrind, bench/README.md "Row-level security: fewer and cheaper
            // InitPlans"). `fv_search` keeps PostgreSQL's own choice (its migration). Behind a
            // transaction pooler nothing is kept anyway: statements are unnamed.
            if !behind_pooler {
                let mut setup = String::from("SET plan_cache_mode = force_generic_plan");
                if timeout_ms > 0 {
                    setup.push_str(&format!("; SET statement_timeout = {timeout_ms}"));
                }
                conn.batch_execute(&setup)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            conn.set_instrumentation(StatementInstrumentation::new(counter.0));
            Ok(conn)
        }
        .boxed()
    });
    AsyncDieselConnectionManager::new_with_config(url, config)
}

/// A connection from `pool`, timing the wait (`fv_db_pool_wait_seconds`): a pool too small
/// for the load shows there first, long before checkouts time out.
async fn checkout(
    pool: &ConnPool,
    which: &'static str,
) -> Result<bb8::PooledConnection<'static, AsyncPgConnection>, bb8::RunError> {
    let started = std::time::Instant::now();
    let conn = pool.get_owned().await;
    metrics::histogram!("fv_db_pool_wait_seconds", "pool" => which)
        .record(started.elapsed().as_secs_f64());
    conn
}

/// How long a read waits for a replica's connection before it goes elsewhere: the monitor has
/// not noticed yet that the replica is gone, and a read should not wait a whole pool timeout.
const REPLICA_CHECKOUT: Duration = Duration::from_millis(500);

impl Db {
    /// Build the pool and check that one connection can be opened.
    pub async fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Self> {
        let statements = StatementCounter::default();
        let statement_timeout = StatementTimeout::default();
        let transaction_pooler = TransactionPooler::default();
        let manager = manager(
            url,
            statements.clone(),
            statement_timeout.clone(),
            transaction_pooler.clone(),
        );
        let pool = bb8::Pool::builder()
            .max_size(options.max_size)
            .connection_timeout(options.connection_timeout)
            .build(manager)
            .await?;
        // Fail at start-up, with the real cause, rather than on the first request. The check's
        // connection stays outside the pool: every pooled one is opened after the core has set
        // the statement timeout.
        drop(
            pool.dedicated_connection()
                .await
                .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?,
        );
        Ok(Self {
            pool,
            statements,
            statement_timeout,
            transaction_pooler,
            replicas: None,
            replica_statements: Arc::default(),
            route: None,
            caller: CallerCell::default(),
        })
    }

    /// Add hot standbys (`replica_urls`) of the primary at `primary_url`, and start the task
    /// that watches them all. A replica that does not answer yet is skipped until it does: a
    /// standby being rebuilt must not stop the server. Needs a Tokio runtime.
    #[must_use]
    pub fn with_replicas(
        mut self,
        primary_url: &str,
        replica_urls: &[String],
        pool: &PoolOptions,
        options: ReplicaOptions,
    ) -> Self {
        if replica_urls.is_empty() {
            return self;
        }
        let counters: Vec<StatementCounter> = replica_urls
            .iter()
            .map(|_| StatementCounter::default())
            .collect();
        let replicas = replica_urls
            .iter()
            .zip(&counters)
            .map(|(url, counter)| {
                let manager = manager(
                    url,
                    counter.clone(),
                    self.statement_timeout.clone(),
                    self.transaction_pooler.clone(),
                );
                let pool = bb8::Pool::builder()
                    .max_size(pool.max_size)
                    .connection_timeout(pool.connection_timeout.min(REPLICA_CHECKOUT))
                    .build_unchecked(manager);
                (url.clone(), pool)
            })
            .collect();
        let set = Arc::new(ReplicaSet::new(primary_url.to_owned(), replicas, options));
        set.spawn_monitor();
        self.replicas = Some(set);
        self.replica_statements = Arc::new(counters);
        self
    }

    /// This handle for one request: query operations (`route.replicas`) read from a replica
    /// that has replayed `route.floor`; every commit is noted in `route.commits` and, for the
    /// read-your-writes window, against `route.credential`.
    #[must_use]
    pub fn for_request(&self, route: Route) -> Self {
        if self.replicas.is_none() {
            // Without replicas every read goes to the primary and no commit is noted.
            return self.clone();
        }
        Self {
            route: Some(Arc::new(route)),
            ..self.clone()
        }
    }

    /// This handle for one caller: the connections it lends see only the rows of `caller`'s
    /// organizations (row-level security, see [`DbCaller`]).
    #[must_use]
    pub fn for_caller(&self, caller: DbCaller) -> Self {
        Self {
            caller: CallerCell::new(caller),
            ..self.clone()
        }
    }

    /// Name another caller for this handle and every clone of it (the request's loaders), from
    /// their next checkout: after a request reads its caller anew.
    pub fn set_caller(&self, caller: DbCaller) {
        self.caller.set(caller);
    }

    /// Open a transaction on `conn` (from [`Db::conn_for_transaction`]) for this handle's
    /// caller: `BEGIN` and the caller's setting in one round trip.
    pub async fn begin(&self, conn: &mut AsyncPgConnection) -> AppResult<()> {
        AnsiTransactionManager::begin_transaction_sql(conn, &self.caller.get().begin_sql()).await?;
        Ok(())
    }

    /// The last commit of `credential` on this instance within the read-your-writes window
    /// (only with replicas).
    pub fn recent_write(&self, credential: uuid::Uuid) -> Option<Lsn> {
        self.replicas.as_ref()?.recent_write(credential)
    }

    /// Note the request's commits so far against `credential` too (a user who signed in during
    /// the request: the route's credential was the anonymous caller's, none).
    pub fn note_credential(&self, credential: uuid::Uuid) {
        if let (Some(set), Some(route)) = (&self.replicas, &self.route)
            && let Some(lsn) = route.commits.get()
        {
            set.note_write(credential, lsn);
        }
    }

    /// Whether replicas are configured.
    pub fn has_replicas(&self) -> bool {
        self.replicas.is_some()
    }

    /// What is known of the primary (up or not) and of each replica, for `/readyz`.
    pub fn replica_statuses(&self) -> Option<(bool, Vec<ReplicaStatus>)> {
        let set = self.replicas.as_ref()?;
        Some((set.primary_up(), set.statuses()))
    }

    /// Whether connections opened from now on go through a transaction pooler (FV_DB_PGBOUNCER):
    /// then they cache no prepared statement and make no session setting. The core sets it with
    /// the statement timeout, before any connection is pooled.
    pub fn set_transaction_pooler(&self, behind_pooler: bool) {
        self.transaction_pooler
            .0
            .store(behind_pooler, Ordering::Relaxed);
    }

    /// The `statement_timeout` of connections opened from now on (0: none). The core sets it
    /// from FV_STATEMENT_TIMEOUT_MS when it is built, before any connection is pooled.
    pub fn set_statement_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.statement_timeout.0.store(ms, Ordering::Relaxed);
    }

    /// A connection from the pool, or `Unavailable` after the configured wait. Behind a
    /// transaction pooler it is pinned (see [`PgConn`]): for reads, not for transactions of
    /// one's own, which take [`Db::conn_for_transaction`].
    pub async fn conn(&self) -> AppResult<PgConn<'_>> {
        if let Some(set) = &self.replicas {
            let query = self.route.as_ref().is_some_and(|route| route.replicas);
            // Everything else prefers the primary, but while it is down a replica answers what
            // it can (credential lookups, subscriptions' catch-up): writes stop, reads go on.
            if query || !set.primary_up() {
                let floor = self.route.as_ref().and_then(|route| route.floor);
                if let Some(conn) = self.replica_conn(set, floor).await? {
                    return Ok(conn);
                }
                metrics::counter!("fv_db_replica_fallbacks_total").increment(1);
            }
            if !set.primary_up() {
                return Err(AppError::Unavailable);
            }
        }
        let conn = self.primary_checkout().await?;
        self.lend(conn).await
    }

    /// A connection to the primary, or `Unavailable` after the pool's wait, or as soon as the
    /// monitor (with replicas) finds the primary down.
    async fn primary_checkout(
        &self,
    ) -> AppResult<bb8::PooledConnection<'static, AsyncPgConnection>> {
        let Some(set) = &self.replicas else {
            return checkout(&self.pool, "primary")
                .await
                .map_err(AppError::from);
        };
        if !set.primary_up() {
            return Err(AppError::Unavailable);
        }
        tokio::select! {
            conn = checkout(&self.pool, "primary") => conn.map_err(AppError::from),
            () = set.primary_down() => Err(AppError::Unavailable),
        }
    }

    /// Wrap a pooled connection for reads: behind a transaction pooler, pinned.
    async fn lend(
        &self,
        conn: bb8::PooledConnection<'static, AsyncPgConnection>,
    ) -> AppResult<PgConn<'_>> {
        let mut conn = PgConn {
            conn: Some(conn),
            pinned: false,
            _db: PhantomData,
        };
        if self.behind_transaction_pooler() {
            // The caller's setting lives as long as the pinned transaction, on its server.
            self.begin(&mut conn).await?;
            conn.pinned = true;
        } else {
            self.caller.get().send_ahead(&mut conn);
        }
        Ok(conn)
    }

    /// A connection to a replica that serves reads and has replayed `floor`: one the monitor
    /// already knows to be there, else the first in turn, waited on for at most the configured
    /// wait. `None`: the primary must answer.
    async fn replica_conn(
        &self,
        set: &ReplicaSet,
        floor: Option<Lsn>,
    ) -> AppResult<Option<PgConn<'_>>> {
        let (ready, behind): (Vec<usize>, Vec<usize>) = set
            .candidates()
            .into_iter()
            .partition(|&index| set.has_replayed(index, floor));
        for index in ready.into_iter().chain(behind) {
            let Ok(pooled) = checkout(&set.replicas[index].pool, "replica").await else {
                set.mark_down(index);
                continue;
            };
            let mut conn = self.lend(pooled).await?;
            let Some(floor) = floor.filter(|_| !set.has_replayed(index, floor)) else {
                return Ok(Some(conn));
            };
            // One replica is waited on, for the whole wait: past it the primary answers.
            return Ok(set
                .await_replay(&mut conn, index, floor)
                .await
                .then_some(conn));
        }
        Ok(None)
    }

    /// Whether connections go through a transaction pooler (FV_DB_PGBOUNCER): a statement
    /// outside a transaction on a [`Db::conn_for_transaction`] connection must then get one.
    pub fn behind_transaction_pooler(&self) -> bool {
        self.transaction_pooler.0.load(Ordering::Relaxed)
    }

    /// A connection to the primary for a transaction the caller opens itself
    /// (`Core::transaction`): never pinned, so that its COMMIT is the real one and happens
    /// before the response. While the monitor knows the primary to be down, `Unavailable` at
    /// once: a write fails fast and the client retries after `retryAfter`.
    pub async fn conn_for_transaction(&self) -> AppResult<PgConn<'_>> {
        let conn = self.primary_checkout().await?;
        Ok(PgConn {
            conn: Some(conn),
            pinned: false,
            _db: PhantomData,
        })
    }

    /// After a commit on `conn`: note its position for the request's response and the
    /// credential's read-your-writes window. Only with replicas (one statement; without them
    /// every read sees every commit anyway). `pg_current_wal_lsn()` right after the COMMIT is
    /// the end of the commit record or later, so a replica past it has replayed the commit.
    pub async fn note_commit(&self, conn: &mut AsyncPgConnection) {
        let (Some(set), Some(route)) = (&self.replicas, &self.route) else {
            return;
        };
        let lsn = if self.behind_transaction_pooler() {
            // Behind PgBouncer a statement outside a transaction may be bound on another server
            // connection than the one that parsed it.
            if AnsiTransactionManager::begin_transaction(conn)
                .await
                .is_err()
            {
                return;
            }
            let lsn = super::replicas::position(conn, super::replicas::CURRENT).await;
            let _ = AnsiTransactionManager::commit_transaction(conn).await;
            lsn
        } else {
            super::replicas::position(conn, super::replicas::CURRENT).await
        };
        let Some(lsn) = lsn else { return };
        route.commits.note(lsn);
        if let Some(credential) = route.credential {
            set.note_write(credential, lsn);
        }
    }

    /// Statements sent through this pool and the replicas' since they were built.
    pub fn statements_executed(&self) -> u64 {
        self.replica_statements
            .iter()
            .chain([&self.statements])
            .map(|counter| counter.0.load(Ordering::Relaxed))
            .sum()
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }
}
