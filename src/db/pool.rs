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

use diesel::connection::{CacheSize, Instrumentation, InstrumentationEvent};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, bb8},
};
use futures_util::FutureExt;

use crate::error::{AppError, AppResult};

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

/// Counts the statements every connection of one pool sends. Tests read it to prove that a
/// request's statement count grows with the query's depth, not with the number of rows.
#[derive(Clone, Default)]
struct StatementCounter(Arc<AtomicU64>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

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

/// The database handle of the core: a pool and its statement counter. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: bb8::Pool<AsyncPgConnection>,
    statements: StatementCounter,
    statement_timeout: StatementTimeout,
    transaction_pooler: TransactionPooler,
}

impl Db {
    /// Build the pool and check that one connection can be opened.
    pub async fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Self> {
        let statements = StatementCounter::default();
        let counter = statements.clone();
        let statement_timeout = StatementTimeout::default();
        let timeout = statement_timeout.clone();
        let transaction_pooler = TransactionPooler::default();
        let pooler = transaction_pooler.clone();
        let mut config = ManagerConfig::default();
        // `Fast` only checks for an open transaction on checkout: a verifying `SELECT 1` per
        // checkout would double the round trips of small requests.
        config.recycling_method = RecyclingMethod::Fast;
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
                if timeout_ms > 0 && !behind_pooler {
                    conn.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                }
                conn.set_instrumentation(counter);
                Ok(conn)
            }
            .boxed()
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
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
        })
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
        let conn = self.pool.get_owned().await.map_err(AppError::from)?;
        let mut conn = PgConn {
            conn: Some(conn),
            pinned: false,
            _db: PhantomData,
        };
        if self.behind_transaction_pooler() {
            AnsiTransactionManager::begin_transaction(&mut *conn).await?;
            conn.pinned = true;
        }
        Ok(conn)
    }

    /// Whether connections go through a transaction pooler (FV_DB_PGBOUNCER): a statement
    /// outside a transaction on a [`Db::conn_for_transaction`] connection must then get one.
    pub fn behind_transaction_pooler(&self) -> bool {
        self.transaction_pooler.0.load(Ordering::Relaxed)
    }

    /// A connection for a transaction the caller opens itself (`Core::transaction`): never
    /// pinned, so that its COMMIT is the real one and happens before the response.
    pub async fn conn_for_transaction(&self) -> AppResult<PgConn<'_>> {
        let conn = self.pool.get_owned().await.map_err(AppError::from)?;
        Ok(PgConn {
            conn: Some(conn),
            pinned: false,
            _db: PhantomData,
        })
    }

    /// Statements sent through this pool since it was built.
    pub fn statements_executed(&self) -> u64 {
        self.statements.0.load(Ordering::Relaxed)
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }
}
