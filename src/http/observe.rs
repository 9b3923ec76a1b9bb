//! What operations see of requests: per-operation latency with a bounded `operation` label, the
//! statements each GraphQL request sent, and the slow request log.
//!
//! The `operation` label is the client's operation name, so clients choose its values: left
//! unbounded, 500 distinct names would make 500 series of every bucket. The rule
//! ([`OperationLabels::label`]):
//! - an operation without a name is `anonymous`; a document that did not parse, or names no
//!   operation that will run, is `unknown`; several operations in one HTTP request are `batch`
//!   (for the per-request statement histogram);
//! - a name (GraphQL names are `[_A-Za-z][_0-9A-Za-z]*`) of at most [`MAX_NAME_LEN`] characters
//!   is its own label if it is among the first [`MAX_OPERATION_NAMES`] distinct names this
//!   process has seen; every later name, and every longer one, is `other`.
//!
//! So a series set is at most `MAX_OPERATION_NAMES + 4` labels whatever clients send; the
//! names a deployment's own clients use arrive first in practice, and `other` growing says
//! that the bound was reached.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::Duration,
};

use crate::domain::{RequestStats, SlowStatement};

/// Distinct operation names that get a label of their own.
pub const MAX_OPERATION_NAMES: usize = 100;

/// The longest operation name that gets a label of its own.
pub const MAX_NAME_LEN: usize = 64;

/// The label of operations without a name.
pub const ANONYMOUS: &str = "anonymous";
/// The label of names past the bound.
pub const OTHER: &str = "other";
/// The label of documents that name no operation that will run.
pub const UNKNOWN: &str = "unknown";
/// The label of an HTTP request that carried several operations.
pub const BATCH: &str = "batch";

/// The operation names admitted as labels so far (one set per application).
#[derive(Default)]
pub(crate) struct OperationLabels {
    names: RwLock<HashSet<Arc<str>>>,
}

impl OperationLabels {
    /// The `operation` label of a request named `name` (see the module docs).
    pub(crate) fn label(&self, name: Option<&str>) -> Arc<str> {
        let Some(name) = name else {
            return Arc::from(ANONYMOUS);
        };
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Arc::from(OTHER);
        }
        let known = self
            .names
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(label) = known.get(name) {
            return label.clone();
        }
        drop(known);
        let mut names = self
            .names
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(label) = names.get(name) {
            return label.clone();
        }
        if names.len() >= MAX_OPERATION_NAMES {
            return Arc::from(OTHER);
        }
        let label: Arc<str> = Arc::from(name);
        names.insert(label.clone());
        label
    }
}

/// What the GraphQL handler tells the metrics middleware about the request (a response
/// extension): the operations' label and the name to log.
#[derive(Clone)]
pub(crate) struct OperationNote {
    /// The bounded label (`batch` for several operations).
    pub(crate) label: Arc<str>,
    /// The operation's name as sent, for the log (cut at [`MAX_NAME_LEN`] characters).
    pub(crate) name: Option<String>,
}

impl OperationNote {
    /// The note of one HTTP request's operations, `(label, name)` each.
    pub(crate) fn of(operations: Vec<(Arc<str>, Option<String>)>) -> Option<Self> {
        let mut operations = operations.into_iter();
        let (label, name) = operations.next()?;
        if operations.next().is_some() {
            return Some(Self {
                label: Arc::from(BATCH),
                name: Some(BATCH.to_owned()),
            });
        }
        Some(Self {
            label,
            name: name.map(|n| n.chars().take(MAX_NAME_LEN).collect()),
        })
    }
}

/// Record one GraphQL operation's latency (`fv_graphql_operation_duration_seconds`).
pub(crate) fn record_operation(label: &Arc<str>, kind: &'static str, elapsed: Duration) {
    metrics::histogram!(
        "fv_graphql_operation_duration_seconds",
        "operation" => label.to_string(),
        "type" => kind,
    )
    .record(elapsed.as_secs_f64());
}

/// After a request: its statement count by operation (GraphQL requests), and the slow request
/// log when it took longer than `slow` (FV_SLOW_REQUEST_MS).
pub(crate) fn after_request(
    stats: &RequestStats,
    note: Option<&OperationNote>,
    path: &str,
    request_id: &str,
    elapsed: Duration,
    slow: Option<Duration>,
) {
    let statements = stats.statements();
    if let Some(note) = note {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a histogram holds an f64; a request sends far fewer than 2^53 statements"
        )]
        metrics::histogram!(
            "fv_db_statements_per_request",
            "operation" => note.label.to_string(),
        )
        .record(statements as f64);
    }
    if slow.is_none_or(|slow| elapsed <= slow) {
        return;
    }
    let operation = note.and_then(|n| n.name.as_deref()).unwrap_or("-");
    let (slowest_ms, slowest) = match stats.slowest() {
        Some(SlowStatement { duration, sql }) => (duration.as_secs_f64() * 1e3, sql),
        None => (0.0, String::new()),
    };
    tracing::warn!(
        path,
        operation,
        request_id,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        statements,
        slowest_statement_ms = slowest_ms,
        slowest_statement = %slowest,
        "slow request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        let labels = OperationLabels::default();
        assert_eq!(&*labels.label(None), ANONYMOUS);
        assert_eq!(&*labels.label(Some("9lives")), OTHER);
        assert_eq!(&*labels.label(Some(&"a".repeat(MAX_NAME_LEN + 1))), OTHER);
        for i in 0..MAX_OPERATION_NAMES {
            assert_eq!(&*labels.label(Some(&format!("Op{i}"))), format!("Op{i}"));
        }
        assert_eq!(&*labels.label(Some("OneTooMany")), OTHER);
        assert_eq!(&*labels.label(Some("Op7")), "Op7");
    }
}
