//! The one error type of the core. The GraphQL face maps it once to `extensions.code`
//! (`api::errors`); nothing else decides what a client sees.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Result alias used across the core.
pub type AppResult<T> = Result<T, AppError>;

/// Every failure the core can report. Messages of the client-facing variants are written for
/// clients; `Internal` carries a cause that is logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No (valid) credentials were presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but lacks the role.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or the caller may not know it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Invalid input; `field` names the offending input where there is one.
    #[error("{message}")]
    BadUserInput {
        /// Dotted path of the input, e.g. `input.slug`.
        field: Option<String>,
        /// What is wrong, for humans.
        message: String,
    },
    /// A uniqueness, version or state conflict.
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts.
    #[error("{0}")]
    RateLimited(String),
    /// The request asks for more work than its budget allows (e.g. model evaluation).
    #[error("{0}")]
    TooComplex(String),
    /// The database could not be reached in time.
    #[error("the service is temporarily unavailable, try again")]
    Unavailable,
    /// A bounded queue of work is full (e.g. report generation): retrying later may work. The
    /// message says which queue.
    #[error("{0}")]
    Overloaded(String),
    /// Anything else: logged with its cause, reported as a bare internal error.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    /// A `BAD_USER_INPUT` naming `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// An internal error from any displayable cause.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }
}

/// Unique constraints whose violation is a client's conflict, with the sentence the client reads.
/// Everything not listed stays internal: a constraint we did not expect is a bug, not input.
const CONFLICT_CONSTRAINTS: &[(&str, &str)] = &[
    (
        "users_email_key",
        "an account with this email already exists",
    ),
    (
        "organizations_slug_key",
        "an organization with this slug already exists",
    ),
    (
        "memberships_pkey",
        "the user is already a member of this organization",
    ),
    (
        "financial_models_org_name_key",
        "a model with this name already exists in the organization",
    ),
    (
        "scenarios_model_name_key",
        "a scenario with this name already exists in the model",
    ),
    (
        "parameters_model_key_key",
        "a parameter with this key already exists in the model",
    ),
    (
        "metrics_model_key_key",
        "a metric with this key already exists in the model",
    ),
];

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => AppError::NotFound("object"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                match info
                    .constraint_name()
                    .and_then(|name| CONFLICT_CONSTRAINTS.iter().find(|(c, _)| *c == name))
                {
                    Some((_, message)) => AppError::Conflict((*message).to_owned()),
                    None => AppError::internal(err),
                }
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if is_cancelled(info.message()) || is_going_away(info.message()) =>
            {
                AppError::Unavailable
            }
            // The connection died under the statement (the server stopped, a failover), or it
            // reached a server that became a standby: retrying later reaches the new primary.
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction,
                ref info,
            ) => {
                tracing::warn!(cause = info.message(), "the database connection failed");
                AppError::Unavailable
            }
            other => AppError::internal(other),
        }
    }
}

/// Whether the server cancelled the statement (SQLSTATE 57014 `query_canceled`: the
/// `statement_timeout`, or a cancel request). diesel keeps no SQLSTATE for these, only the
/// server's message, whose English prefix we match; under a translated `lc_messages` the
/// cancellation stays `Internal`, which reveals nothing either. The client hears `Unavailable`:
/// retrying later may work, and nothing of the SQL is sent.
fn is_cancelled(message: &str) -> bool {
    message.starts_with("canceling statement due to")
}

/// Whether the server is ending the session (SQLSTATE 57P01 `admin_shutdown`, 57P02, 57P03
/// `cannot_connect_now`): a shutdown, a restart, a failover. Matched on the English message, as
/// [`is_cancelled`] is.
fn is_going_away(message: &str) -> bool {
    message.starts_with("terminating connection due to")
        || message.starts_with("the database system is")
}

impl<E: std::error::Error + Send + Sync + 'static> From<bb8::RunError<E>> for AppError {
    fn from(err: bb8::RunError<E>) -> Self {
        match err {
            bb8::RunError::TimedOut => AppError::Unavailable,
            // No new connection could be opened: the server is down or refuses (a restart, a
            // failover in progress). The cause is for the operator; the client retries.
            bb8::RunError::User(e) => {
                tracing::warn!(error = %e, "cannot open a database connection");
                AppError::Unavailable
            }
        }
    }
}
