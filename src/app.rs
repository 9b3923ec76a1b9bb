//! The application: configuration, core and schemas, shared by every request. `main` and the
//! tests both build one and call [`App::router`].

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::{
    api::{AppSchema, SchemaOptions, build_schema, request_guard::SchemaBounds},
    config::Config,
    db::Db,
    domain::{Core, reports, webhooks},
};

/// Shared application state. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) inner: Arc<AppInner>,
}

pub(crate) struct AppInner {
    pub(crate) config: Config,
    pub(crate) core: Core,
    /// The schema with every limit.
    pub(crate) schema: AppSchema,
    /// The same schema with the introspection depth and no complexity limit, used only for
    /// operations that select nothing but introspection (GraphiQL's standard query is 15 deep).
    /// The request guard bounds their response size first (`api::request_guard`).
    pub(crate) introspection_schema: Option<AppSchema>,
    /// The sizes of the schema's introspection lists, for the request guard's estimate.
    pub(crate) schema_bounds: SchemaBounds,
    pub(crate) metrics: PrometheusHandle,
    /// The operation names admitted as metric labels (bounded: `http/observe.rs`).
    pub(crate) operation_labels: crate::http::observe::OperationLabels,
    /// The audit LISTEN task, stopped with the app.
    audit_listener: Option<tokio::task::AbortHandle>,
    /// The report workers and the start-up sweep of PENDING reports, stopped with the app.
    report_tasks: Vec<tokio::task::AbortHandle>,
    /// The webhook dispatcher (and with it its workers), stopped with the app.
    webhook_dispatcher: Option<tokio::task::AbortHandle>,
}

impl Drop for AppInner {
    fn drop(&mut self) {
        if let Some(listener) = &self.audit_listener {
            listener.abort();
        }
        for task in &self.report_tasks {
            task.abort();
        }
        if let Some(dispatcher) = &self.webhook_dispatcher {
            dispatcher.abort();
        }
    }
}

/// One Prometheus recorder per process (a global), shared by every `App` (tests build many).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = histogram_buckets(PrometheusBuilder::new()).build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding applications); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Buckets of the histograms `/metrics` renders as Prometheus histograms (the others, set
/// before these, stay summaries). Durations from half a millisecond (a primary-key lookup) to
/// ten seconds (the statement timeout); counts on a rough doubling scale.
fn histogram_buckets(builder: PrometheusBuilder) -> PrometheusBuilder {
    use metrics_exporter_prometheus::Matcher;
    const SECONDS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    const COUNTS: &[f64] = &[
        0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0, 233.0, 377.0, 610.0,
        1000.0,
    ];
    let histograms: [(&str, &[f64]); 6] = [
        ("fv_graphql_operation_duration_seconds", SECONDS),
        ("fv_db_statement_duration_seconds", SECONDS),
        ("fv_db_pool_wait_seconds", SECONDS),
        ("fv_db_statements_per_request", COUNTS),
        ("fv_dataloader_batch_size", COUNTS),
        ("fv_audit_stream_lag", COUNTS),
    ];
    histograms
        .into_iter()
        .fold(builder, |builder, (name, buckets)| {
            #[allow(
                clippy::expect_used,
                reason = "only an empty bucket list is refused, and none of these is empty"
            )]
            builder
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
                .expect("non-empty buckets")
        })
}

impl App {
    /// Build the application over a connected database; fails when the file store cannot be
    /// opened (a misconfiguration stops start-up, not the first upload).
    pub fn new(config: Config, db: Db) -> anyhow::Result<Self> {
        let core = Core::new(db, &config)?;
        let schema = build_schema(&SchemaOptions {
            max_depth: Some(config.max_depth),
            max_complexity: Some(config.max_complexity),
            introspection: config.introspection,
        });
        let introspection_schema = config.introspection.then(|| {
            build_schema(&SchemaOptions {
                max_depth: Some(config.max_introspection_depth),
                max_complexity: None,
                introspection: true,
            })
        });
        let schema_bounds = SchemaBounds::from_sdl(&schema.sdl());
        // One LISTEN connection per instance feeds the audit subscriptions (outside the pool).
        // A LISTEN is session state: behind a transaction pooler it needs its own URL.
        let audit_listener = config
            .session_database_url()
            .map(|url| core.audit_stream().listen(url.to_owned()).abort_handle());
        // Reports are generated off the request path; what an earlier process left PENDING is
        // queued again (or failed) at once, so no report waits forever.
        let mut report_tasks = reports::jobs::start_workers(&core, config.report_workers);
        let sweep = core.clone();
        report_tasks.push(
            tokio::spawn(async move {
                if let Err(err) = reports::jobs::recover(&sweep).await {
                    tracing::error!(error = %err, "could not recover the PENDING reports");
                }
            })
            .abort_handle(),
        );
        // Audit webhooks are delivered by one worker per endpoint across the instances; the
        // payload's event shape is the GraphQL face's (global IDs).
        // The dispatcher's connection keeps a session setting: like the LISTEN, it needs the
        // session URL.
        let webhook_dispatcher = config
            .session_database_url()
            .map(|url| {
                webhooks::delivery::start(
                    &core,
                    Arc::new(crate::api::webhook_payload::EventShape),
                    url.to_owned(),
                )
            })
            .transpose()?;
        Ok(Self {
            inner: Arc::new(AppInner {
                config,
                core,
                schema,
                introspection_schema,
                schema_bounds,
                metrics: metrics_handle(),
                operation_labels: Default::default(),
                audit_listener,
                report_tasks,
                webhook_dispatcher,
            }),
        })
    }

    /// The core (domain operations).
    pub fn core(&self) -> &Core {
        &self.inner.core
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The schema.
    pub fn schema(&self) -> &AppSchema {
        &self.inner.schema
    }

    /// The HTTP router.
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.clone())
    }
}
