//! Operational endpoints and middleware: health, readiness, metrics, panics.

use super::graphql::reported_response;
use super::observe::OperationNote;
use crate::{domain::RequestStats, error::AppError};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::app::App;

/// `GET /healthz`: the process runs (it never touches the database, so it answers even while
/// the pool is exhausted).
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 only while the database answers within two seconds (with replicas, the
/// primary or, while it is down, a replica: reads are still served). With replicas the body is
/// JSON: the primary's state and each replica's, with its lag.
pub(crate) async fn readyz(State(app): State<App>) -> Response {
    let answers = matches!(
        tokio::time::timeout(Duration::from_secs(2), app.core().ping()).await,
        Ok(Ok(()))
    );
    let status = if answers {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let Some((primary_up, replicas)) = app.core().replica_statuses() else {
        let text = if answers {
            "ready"
        } else {
            "database unavailable"
        };
        return (status, text).into_response();
    };
    let replicas: Vec<serde_json::Value> = replicas
        .iter()
        .map(|replica| {
            serde_json::json!({
                "name": replica.name,
                "state": replica.state.as_str(),
                "lagSeconds": replica.lag.map(|lag| lag.as_secs_f64()),
                "lagBytes": replica.lag_bytes,
                "replayed": replica.replayed.to_string(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "status": if answers { "ready" } else { "unavailable" },
        "primary": if primary_up { "up" } else { "down" },
        "replicas": replicas,
    });
    (status, axum::Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
#[allow(
    clippy::cast_precision_loss,
    reason = "a gauge holds an f64, exact up to 2^53 statements"
)]
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    let (connections, idle) = app.core().pool_state();
    metrics::gauge!("fv_db_pool_connections").set(f64::from(connections));
    metrics::gauge!("fv_db_pool_idle_connections").set(f64::from(idle));
    metrics::gauge!("fv_db_statements_total").set(app.core().statement_count() as f64);
    metrics::gauge!("fv_argon2_queue_depth").set(app.core().hasher().queue_depth() as f64);
    let jobs = app.core().report_queue().counts();
    #[allow(
        clippy::cast_precision_loss,
        reason = "a gauge holds an f64, exact up to 2^53 jobs"
    )]
    for (status, count) in [
        ("pending", jobs.pending as f64),
        ("running", jobs.running as f64),
        ("ready", jobs.ready as f64),
        ("failed", jobs.failed as f64),
    ] {
        metrics::gauge!("fv_report_jobs", "status" => status).set(count);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.inner.metrics.render(),
    )
        .into_response()
}

/// Count requests and their latency by route and status; run each with its own
/// [`RequestStats`] (the statements it sends), then record what the GraphQL handler noted and
/// log it when it was slow (`observe.rs`).
pub(crate) async fn record_metrics(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let request_id = request
        .headers()
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let stats = Arc::new(RequestStats::default());
    let started = Instant::now();
    let mut response = RequestStats::scope(stats.clone(), next.run(request)).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("fv_http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status).increment(1);
    let note = response.extensions_mut().remove::<OperationNote>();
    let slow = app.config().slow_request_ms.map(Duration::from_millis);
    super::observe::after_request(&stats, note.as_ref(), &path, &request_id, elapsed, slow);
    metrics::histogram!("fv_http_request_duration_seconds", "method" => method, "path" => path)
        .record(elapsed.as_secs_f64());
    response
}

/// A panic becomes a bare 500 in the GraphQL error shape; the panic itself is logged, never sent.
pub(crate) fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    reported_response(
        &AppError::internal(anyhow::anyhow!("panic: {detail}")),
        "handling a request",
    )
}
