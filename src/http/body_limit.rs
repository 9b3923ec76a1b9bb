//! Request body limits: FV_MAX_BODY_BYTES for every body, except multipart uploads to
//! `POST /graphql`, which may also carry a file of up to FV_MAX_UPLOAD_BYTES.

use crate::api::errors::codes;
use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::graphql::error_response;
use crate::{app::App, config::Config};

/// Whether the body is a GraphQL multipart request (the only kind that carries uploads).
pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The largest body `request` may have. An upload's operations and map are bounded like any
/// JSON body, so its envelope gets FV_MAX_BODY_BYTES on top of the file limit; whether the file
/// itself fits is decided by `uploadModelFile`, which names the limit in a `BAD_USER_INPUT`.
fn limit_for(config: &Config, request: &Request) -> usize {
    if request.method() == Method::POST
        && request.uri().path() == "/graphql"
        && is_multipart(request.headers())
    {
        config
            .max_upload_bytes
            .saturating_add(config.max_body_bytes)
    } else {
        config.max_body_bytes
    }
}

/// Refuse a declared oversize body at once (413), and cut off a chunked one at the limit (the
/// reader then fails, which the GraphQL handler reports as 413 too).
pub(crate) async fn limit_body(State(app): State<App>, request: Request, next: Next) -> Response {
    let limit = limit_for(app.config(), &request);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BAD_USER_INPUT,
            &format!("the request body is larger than {limit} bytes"),
        );
    }
    next.run(request.map(|body| Body::new(http_body_util::Limited::new(body, limit))))
        .await
}
