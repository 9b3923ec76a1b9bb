//! `AppError` → GraphQL error with `extensions.code`: the one place that decides what a client sees.

use std::sync::Arc;

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;

use crate::error::AppError;

/// Result of a resolver.
pub type ApiResult<T> = Result<T, ApiError>;

/// A GraphQL error built from an [`AppError`]. It deliberately does not implement `Display`:
/// async-graphql converts any `Display` type into an error *without* a code, so only this
/// conversion (and therefore `extensions.code`) can apply to core errors.
#[derive(Debug, Clone)]
pub struct ApiError(async_graphql::Error);

/// Every `extensions.code` a client can meet (API.md's list): HTTP paths, GraphQL errors and
/// WebSocket messages all name them from here.
pub mod codes {
    /// No valid credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Authenticated, but the role is missing.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// No such object, or not one the caller may know of.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The input is wrong (`extensions.field` names it where it can).
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// A uniqueness, version or state conflict.
    pub const CONFLICT: &str = "CONFLICT";
    /// Too many attempts.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A limit refused the request before it ran, or its evaluation budget ran out.
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    /// The database or a dependency is busy or unreachable: retrying after
    /// `extensions.retryAfter` seconds may work.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// A bug or an unexpected failure; its cause is logged, never sent.
    pub const INTERNAL: &str = "INTERNAL";
}

/// Seconds a client should wait before retrying an `UNAVAILABLE` request: pool and statement
/// timeouts pass with the load.
pub const RETRY_AFTER_SECS: u32 = 1;

/// What a client is told of an [`AppError`]: the one mapping every HTTP path and GraphQL use.
#[derive(Debug, Clone)]
pub struct Reported {
    /// The HTTP status, for errors that end a request before GraphQL runs.
    pub status: StatusCode,
    /// `extensions.code`.
    pub code: &'static str,
    /// The message: the error's own for clients' errors, a bare one for internal ones.
    pub message: String,
}

/// The `extensions.code` of an error.
pub fn code_of(err: &AppError) -> &'static str {
    status_and_code(err).1
}

fn status_and_code(err: &AppError) -> (StatusCode, &'static str) {
    match err {
        AppError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
        AppError::BadUserInput { .. } => (StatusCode::BAD_REQUEST, codes::BAD_USER_INPUT),
        AppError::Conflict(_) => (StatusCode::CONFLICT, codes::CONFLICT),
        AppError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED),
        AppError::TooComplex(_) => (StatusCode::BAD_REQUEST, codes::QUERY_TOO_COMPLEX),
        AppError::Unavailable | AppError::Overloaded(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE)
        }
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
    }
}

/// Report `err` to a client. An internal cause is logged here, the one place (with the
/// request's span, which carries its id, and `during`, what was being done), and replaced by a
/// bare message.
pub fn report(err: &AppError, during: &'static str) -> Reported {
    if let AppError::Internal(cause) = err {
        tracing::error!(error = format!("{cause:#}"), during, "internal error");
    }
    let (status, code) = status_and_code(err);
    Reported {
        status,
        code,
        message: err.to_string(),
    }
}

/// Build the GraphQL error of `err` (see [`report`]).
pub fn to_graphql(err: &AppError) -> async_graphql::Error {
    let Reported { code, message, .. } = report(err, "resolving a field");
    let field = match err {
        AppError::BadUserInput { field, .. } => field.clone(),
        _ => None,
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        if code == codes::UNAVAILABLE {
            ext.set("retryAfter", RETRY_AFTER_SECS);
        }
        if let Some(field) = &field {
            ext.set("field", field.as_str());
        }
    })
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        Self(to_graphql(&err))
    }
}

impl From<Arc<AppError>> for ApiError {
    fn from(err: Arc<AppError>) -> Self {
        Self(to_graphql(&err))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.0
    }
}

/// Extension: `.api()` converts a core result into a resolver result.
pub trait IntoApi<T> {
    /// Convert the error side.
    fn api(self) -> ApiResult<T>;
}

impl<T> IntoApi<T> for Result<T, AppError> {
    fn api(self) -> ApiResult<T> {
        self.map_err(ApiError::from)
    }
}
