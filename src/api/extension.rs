//! The API's one async-graphql extension. async-graphql wraps every field's resolution in every
//! registered extension's `resolve` hook (a boxed future each, even for an extension that only
//! needs `request`), so the rules that need hooks share one extension: one layer per field.
//! - every error gets an `extensions.code` (`error_codes.rs`);
//! - field errors follow the spec (`field_errors.rs`);
//! - each top-level mutation field starts with a fresh evaluation memo (`evaluation_scope.rs`).
//! - with traces on, each top-level mutation field is a span (`telemetry.rs`).

use std::sync::Arc;

use async_graphql::{
    Response, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest, NextResolve,
        NextSubscribe, ResolveInfo,
    },
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;
use tracing::Instrument;

/// The schema's mutation root type.
const MUTATION_ROOT: &str = "Mutation";

use super::{error_codes::ensure_code, evaluation_scope, field_errors::FieldErrors};

/// The extension factory: one state per request (or per subscription).
pub struct ApiRules;

impl ExtensionFactory for ApiRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ApiRulesExtension::default())
    }
}

#[derive(Default)]
struct ApiRulesExtension {
    field_errors: Arc<FieldErrors>,
}

#[async_trait::async_trait]
impl Extension for ApiRulesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors.iter_mut().for_each(ensure_code);
        response
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        self.field_errors.complete(response)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Events are resolved one after another: each takes the failures of its own resolution.
        let field_errors = self.field_errors.clone();
        next.run(ctx, stream)
            .map(move |response| field_errors.complete(response))
            .boxed()
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.is_for_introspection {
            return next.run(ctx, info).await;
        }
        evaluation_scope::before_field(ctx, &info);
        let nullable = !info.return_type.ends_with('!');
        let path = info.path_node;
        // With traces on, each top-level mutation field is a span: a mutation's fields run one
        // after another, each its own transaction, and the trace shows which one took the time.
        let result = if crate::telemetry::traces_enabled()
            && path.parent.is_none()
            && info.parent_type == MUTATION_ROOT
        {
            let span = tracing::info_span!(
                "graphql.mutation",
                otel.name = %format_args!("Mutation.{}", info.name),
                graphql.field = info.name,
            );
            next.run(ctx, info).instrument(span).await
        } else {
            next.run(ctx, info).await
        };
        self.field_errors.on_result(path, nullable, result)
    }
}
