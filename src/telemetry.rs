//! Logs and traces: `tracing` with an `EnvFilter` (`FV_LOG`) and a text or JSON format
//! (`FV_LOG_FORMAT`); with `FV_OTLP_ENDPOINT`, the same spans exported over OTLP/HTTP.
//!
//! Traces (protobuf over HTTP, through `tracing-opentelemetry`) have one span per request (a
//! child of the caller's W3C `traceparent`), per top-level mutation field, per DataLoader batch
//! and per SQL statement.
//!
//! The spans that exist only for traces (statements, mutation fields) are created only while
//! [`traces_enabled`] says so: one relaxed atomic load per statement is all they cost without an
//! endpoint (README, "Operating it", has the measurement).

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, filter::Targets, fmt, prelude::*};

/// Whether spans are exported (set once an OTLP exporter exists).
static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported: the instrumentation creates its trace-only spans only then.
pub fn traces_enabled() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// What [`init`] installed; [`Telemetry::shutdown`] flushes the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Export what is buffered and stop the exporter (at exit: a batch not yet sent is lost
    /// otherwise).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing the trace exporter failed");
        }
    }
}

/// Install the global subscriber once; later calls (tests) are ignored. With `otlp_endpoint`,
/// spans of this crate at `INFO` and above are exported whatever `filter` says of logs.
pub fn init(filter: &str, format: &str, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = otlp_endpoint.map(otlp_provider).transpose()?;
    let registry = tracing_subscriber::registry().with(provider.as_ref().map(otlp_layer));
    let _ = if format.eq_ignore_ascii_case("json") {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_target(false).with_filter(filter))
            .try_init()
    };
    Ok(Telemetry { provider })
}

/// An OTLP/HTTP exporter to `endpoint` (a collector's base URL such as `http://127.0.0.1:4318`,
/// to which `/v1/traces` is added, or the full URL ending in `/v1/traces`) behind a batch
/// processor (`OTEL_BSP_SCHEDULE_DELAY` and the other `OTEL_BSP_*` variables tune it). Turns
/// the trace-only spans on.
pub fn otlp_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let endpoint = endpoint.trim_end_matches('/');
    let url = if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("finvision").build())
        .build();
    TRACES.store(true, Ordering::Relaxed);
    Ok(provider)
}

/// The `tracing` layer that exports this crate's spans through `provider`.
pub fn otlp_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("finvision"))
        .with_filter(Targets::new().with_target("finvision", tracing::Level::INFO))
}

/// Make `span` (a request's) the child of the W3C `traceparent` (and `tracestate`) in `headers`,
/// when traces are on and the caller sent one.
pub fn adopt_remote_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !traces_enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Reads W3C trace-context headers from an HTTP request.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}
