//! The connection pool: bb8 over diesel-async, with a statement counter on every connection.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::{
    AsyncConnection, AsyncPgConnection,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, bb8},
};
use futures_util::FutureExt;

use crate::error::{AppError, AppResult};

/// A pooled connection.
pub type PgConn<'a> = bb8::PooledConnection<'a, AsyncPgConnection>;

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

/// The database handle of the core: a pool and its statement counter. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: bb8::Pool<AsyncPgConnection>,
    statements: StatementCounter,
}

impl Db {
    /// Build the pool and check that one connection can be opened.
    pub async fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Self> {
        let statements = StatementCounter::default();
        let counter = statements.clone();
        let mut config = ManagerConfig::default();
        // `Fast` only checks for an open transaction on checkout: a verifying `SELECT 1` per
        // checkout would double the round trips of small requests.
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |url| {
            let counter = counter.clone();
            async move {
                let mut conn = AsyncPgConnection::establish(url).await?;
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
        // Fail at start-up, with the real cause, rather than on the first request.
        drop(
            pool.get()
                .await
                .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?,
        );
        Ok(Self { pool, statements })
    }

    /// A connection from the pool, or `Unavailable` after the configured wait.
    pub async fn conn(&self) -> AppResult<PgConn<'_>> {
        self.pool.get().await.map_err(AppError::from)
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
