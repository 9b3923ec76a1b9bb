//! `AppError` → GraphQL error with `extensions.code`: the one place that decides what a client sees.

use std::sync::Arc;

use async_graphql::ErrorExtensions;

use crate::error::AppError;

/// Result of a resolver.
pub type ApiResult<T> = Result<T, ApiError>;

/// A GraphQL error built from an [`AppError`]. It deliberately does not implement `Display`:
/// async-graphql converts any `Display` type into an error *without* a code, so only this
/// conversion (and therefore `extensions.code`) can apply to core errors.
#[derive(Debug, Clone)]
pub struct ApiError(async_graphql::Error);

/// The `extensions.code` of an error, and whether its message may be shown.
pub fn code_of(err: &AppError) -> &'static str {
    match err {
        AppError::Unauthenticated(_) => "UNAUTHENTICATED",
        AppError::Forbidden(_) => "FORBIDDEN",
        AppError::NotFound(_) => "NOT_FOUND",
        AppError::BadUserInput { .. } => "BAD_USER_INPUT",
        AppError::Conflict(_) => "CONFLICT",
        AppError::RateLimited(_) => "RATE_LIMITED",
        AppError::TooComplex(_) => "QUERY_TOO_COMPLEX",
        AppError::Unavailable => "UNAVAILABLE",
        AppError::Internal(_) => "INTERNAL",
    }
}

/// Build the GraphQL error of `err`. Internal causes are logged here (with the request's span,
/// which carries its id) and replaced by a bare message.
pub fn to_graphql(err: &AppError) -> async_graphql::Error {
    if let AppError::Internal(cause) = err {
        tracing::error!(error = format!("{cause:#}"), "internal error");
    }
    let code = code_of(err);
    let field = match err {
        AppError::BadUserInput { field, .. } => field.clone(),
        _ => None,
    };
    let unavailable = matches!(err, AppError::Unavailable);
    async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
        ext.set("code", code);
        if unavailable {
            // A pool or statement timeout: the load passes, so retrying soon may work (API.md).
            ext.set("retryAfter", 1);
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
