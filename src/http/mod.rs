//! The axum router: `/graphql` (POST, GET, GraphiQL), `/graphql/ws`, `/files/{id}`,
//! `/reports/{id}`, `/healthz`, `/readyz`, `/metrics`.

mod body_limit;
mod client_addr;
mod files;
pub mod graphiql;
mod graphql;
pub(crate) mod guard;
mod multipart;
mod ops;
mod reports;
mod request_id;
mod response;
mod timeout;
mod ws;

use std::time::Duration;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, header},
    routing::get,
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::app::App;

/// The request id header, set when the client sends none and echoed in every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Build the router over `app`.
pub fn router(app: App) -> Router {
    let body_limit = app.config().max_body_bytes;
    Router::new()
        .route("/graphql", get(graphql::get_graphql).post(graphql::post_graphql))
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/files/{id}", get(files::download))
        .route("/reports/{id}", get(reports::download))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(graphiql::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(app.clone(), body_limit::limit_body))
        .layer(axum::middleware::from_fn_with_state(app.clone(), timeout::limit_time))
        .layer(axum::middleware::from_fn(ops::record_metrics))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        // Browsers must never sniff an API response (a JSON error echoing input) into HTML.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Outermost: a bad client id is dropped before `SetRequestIdLayer` decides to mint one.
        .layer(axum::middleware::from_fn(request_id::sanitize))
        .with_state(app)
}

/// How long graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
