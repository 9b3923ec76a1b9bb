//! The application: configuration, core and schemas, shared by every request. `main` and the
//! tests both build one and call [`App::router`].

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::{
    api::{AppSchema, SchemaOptions, build_schema, request_guard::SchemaBounds},
    config::Config,
    db::Db,
    domain::{Core, reports},
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
    /// The audit LISTEN task, stopped with the app.
    audit_listener: Option<tokio::task::AbortHandle>,
    /// The report workers and the start-up sweep of PENDING reports, stopped with the app.
    report_tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for AppInner {
    fn drop(&mut self) {
        if let Some(listener) = &self.audit_listener {
            listener.abort();
        }
        for task in &self.report_tasks {
            task.abort();
        }
    }
}

/// One Prometheus recorder per process (a global), shared by every `App` (tests build many).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding applications); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
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
        Ok(Self {
            inner: Arc::new(AppInner {
                config,
                core,
                schema,
                introspection_schema,
                schema_bounds,
                metrics: metrics_handle(),
                audit_listener,
                report_tasks,
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
