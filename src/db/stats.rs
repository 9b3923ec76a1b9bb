//! What one request's statements cost, and the instrumentation every pooled connection carries.
//!
//! A request's [`RequestStats`] travel in a task-local ([`RequestStats::scope`]): the statements
//! its handler and resolvers send are noted there by the connection that runs them, whichever
//! pooled connection that is (a handle per request would miss authentication, which runs on the
//! core's own). Tasks spawned for the request (DataLoader batches) take it along with
//! [`propagate`].
//!
//! Only the SQL text of a statement is ever kept: the instrumentation reads it from diesel's
//! `FinishQuery` event, which carries the prepared text alone, never the bound values.

use std::{
    collections::VecDeque,
    fmt::Write as _,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use futures_util::{FutureExt, future::BoxFuture};
use tracing::Instrument;

tokio::task_local! {
    static CURRENT: Arc<RequestStats>;
}

/// The longest statement text kept for the slow request log, in bytes.
const MAX_STATEMENT_TEXT: usize = 2_000;

/// Statements one request sent, and its slowest.
#[derive(Default)]
pub struct RequestStats {
    statements: AtomicU64,
    slowest: Mutex<Option<SlowStatement>>,
}

/// A statement's duration and SQL text (without its parameters).
#[derive(Clone, Debug)]
pub struct SlowStatement {
    /// How long it took, from being sent to its result.
    pub duration: Duration,
    /// The SQL with `$1`-style placeholders, cut at [`MAX_STATEMENT_TEXT`] bytes.
    pub sql: String,
}

impl RequestStats {
    /// Run `future` with `stats` as the current request's.
    pub fn scope<F: Future>(stats: Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(stats, future)
    }

    /// The current request's stats, if the running task serves one.
    pub fn current() -> Option<Arc<Self>> {
        CURRENT.try_with(Arc::clone).ok()
    }

    /// Statements sent so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The slowest statement so far.
    pub fn slowest(&self) -> Option<SlowStatement> {
        self.slowest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn note(&self, duration: Duration, sql: &dyn std::fmt::Display) {
        let mut slowest = self
            .slowest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slowest.as_ref().is_some_and(|s| s.duration >= duration) {
            return;
        }
        // Formatted only when it is the slowest yet: most statements never are.
        let mut text = String::new();
        let _ = write!(text, "{sql}");
        if text.len() > MAX_STATEMENT_TEXT {
            let mut cut = MAX_STATEMENT_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        *slowest = Some(SlowStatement {
            duration,
            sql: text,
        });
    }
}

/// `task` (spawned for the current request) with the request's stats and, with traces on, the
/// current span as its parent: a DataLoader batch's statements count for the request that
/// asked, and its span sits under the request's.
pub fn propagate<F>(task: F) -> BoxFuture<'static, F::Output>
where
    F: Future + Send + 'static,
{
    let task = if crate::telemetry::traces_enabled() {
        task.instrument(tracing::Span::current()).boxed()
    } else {
        task.boxed()
    };
    match RequestStats::current() {
        Some(stats) => RequestStats::scope(stats, task).boxed(),
        None => task,
    }
}

/// A statement sent and not yet finished.
struct InFlight {
    at: Instant,
    request: Option<Arc<RequestStats>>,
    span: Option<tracing::Span>,
}

/// Statements a connection may have in flight at once (diesel-async pipelines): past this, the
/// oldest is taken for one whose future was dropped before it finished and forgotten.
const MAX_IN_FLIGHT: usize = 16;

/// The instrumentation of every pooled connection: counts statements for the pool
/// (`counter`, what `Db::statements_executed` reads) and for the current request, times them
/// (`fv_db_statement_duration_seconds`) and, with traces on, gives each a span. Statements
/// finish in the order they were sent (PostgreSQL answers a pipeline in order), so a queue
/// pairs each finish with its start.
pub(super) struct StatementInstrumentation {
    counter: Arc<AtomicU64>,
    in_flight: VecDeque<InFlight>,
}

impl StatementInstrumentation {
    pub(super) fn new(counter: Arc<AtomicU64>) -> Self {
        Self {
            counter,
            in_flight: VecDeque::new(),
        }
    }
}

impl Instrumentation for StatementInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                // The caller's setting sent ahead is not a statement of the request (see
                // `DbCaller::send_ahead`); nobody awaits its end either.
                if super::caller::uncounted() {
                    return;
                }
                self.counter.fetch_add(1, Ordering::Relaxed);
                let request = RequestStats::current();
                if let Some(stats) = &request {
                    stats.statements.fetch_add(1, Ordering::Relaxed);
                }
                let span = crate::telemetry::traces_enabled().then(|| {
                    tracing::info_span!(
                        "db.statement",
                        otel.kind = "client",
                        db.system = "postgresql",
                        db.query.text = tracing::field::Empty,
                        otel.status_code = tracing::field::Empty,
                    )
                });
                if self.in_flight.len() >= MAX_IN_FLIGHT {
                    self.in_flight.pop_front();
                }
                self.in_flight.push_back(InFlight {
                    at: Instant::now(),
                    request,
                    span,
                });
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                if super::caller::uncounted() {
                    return;
                }
                let Some(started) = self.in_flight.pop_front() else {
                    return;
                };
                let duration = started.at.elapsed();
                metrics::histogram!("fv_db_statement_duration_seconds")
                    .record(duration.as_secs_f64());
                if let Some(stats) = &started.request {
                    stats.note(duration, query);
                }
                if let Some(span) = started.span {
                    span.record("db.query.text", tracing::field::display(query));
                    if error.is_some() {
                        span.record("otel.status_code", "ERROR");
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_statement_is_kept_and_cut_at_the_limit() {
        let stats = RequestStats::default();
        stats.note(Duration::from_millis(5), &"SELECT 1");
        stats.note(Duration::from_millis(3), &"SELECT 2");
        assert_eq!(stats.slowest().map(|s| s.sql), Some("SELECT 1".to_owned()));
        let long = "é".repeat(MAX_STATEMENT_TEXT);
        stats.note(Duration::from_millis(9), &long);
        let kept = stats.slowest().map(|s| s.sql).unwrap_or_default();
        assert!(kept.len() <= MAX_STATEMENT_TEXT && kept.starts_with('é'));
    }
}
