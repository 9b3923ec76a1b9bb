//! FV_REQUEST_TIMEOUT_SECS: a request that has not produced its response in time is answered
//! with 503 `UNAVAILABLE` in the GraphQL error shape, and its handler is dropped (which cancels
//! its database work and releases its connection).
//!
//! The bound covers the handler up to the response head: reading a request body (an upload
//! included) and executing the operation. A streamed response body (`GET /files/{id}`) and a
//! WebSocket after its upgrade live on outside it: the former holds no connection, the latter
//! has its own limits (`http::ws`).

use crate::api::errors::codes;
use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::Response,
};

use super::graphql::error_response;
use crate::app::App;

/// Run the rest of the stack under the request timeout (none when it is 0).
pub(crate) async fn limit_time(State(app): State<App>, request: Request, next: Next) -> Response {
    let seconds = app.config().request_timeout_secs;
    if seconds == 0 {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(Duration::from_secs(seconds), next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(path, seconds, "request timed out");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UNAVAILABLE,
                &format!("the request took longer than {seconds} s: try again"),
            )
        }
    }
}
