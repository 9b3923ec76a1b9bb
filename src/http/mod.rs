//! The axum router: `/graphql` (POST, GET, GraphiQL), `/graphql/ws`, `/files/{id}`,
//! `/reports/{id}`, `/healthz`, `/readyz`, `/metrics`.

mod body_limit;
mod client_addr;
mod files;
pub mod graphiql;
mod graphql;
pub(crate) mod guard;
mod multipart;
pub mod observe;
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

/// Build the router over `app`. `/metrics` is on it unless FV_METRICS_LISTEN moves it to
/// [`metrics_router`].
pub fn router(app: App) -> Router {
    let body_limit = app.config().max_body_bytes;
    let mut routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/files/{id}", get(files::download))
        .route("/reports/{id}", get(reports::download))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if app.config().metrics_listen.is_none() {
        routes = routes.route("/metrics", get(ops::metrics));
    }
    routes
        .merge(graphiql::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(app.clone(), body_limit::limit_body))
        .layer(axum::middleware::from_fn_with_state(app.clone(), timeout::limit_time))
        .layer(axum::middleware::from_fn_with_state(app.clone(), ops::record_metrics))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        // Browsers must never sniff an API response (a JSON error echoing input) into HTML.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id, otel.kind = "server");
            // The request span of a trace continues the caller's (W3C `traceparent`).
            crate::telemetry::adopt_remote_parent(&span, req.headers());
            span
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Outermost: a bad client id is dropped before `SetRequestIdLayer` decides to mint one.
        .layer(axum::middleware::from_fn(request_id::sanitize))
        .with_state(app)
}

/// `/metrics` alone, for the listener FV_METRICS_LISTEN names (operators' network, not the
/// public one).
pub fn metrics_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(app)
}

/// How long graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
