//! Keeps the per-operation memo of evaluated scenarios (`RequestState::evaluations`) fresh: a
//! mutation may change what a grid was computed from, so every top-level mutation field starts
//! with an empty memo. Queries never write, so within a query every scenario is evaluated once.

use std::sync::Arc;

use async_graphql::{
    ServerResult, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
};

use super::context::RequestState;

/// The extension factory.
pub struct EvaluationScope;

impl ExtensionFactory for EvaluationScope {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(EvaluationScopeExtension)
    }
}

struct EvaluationScopeExtension;

#[async_trait::async_trait]
impl Extension for EvaluationScopeExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // Mutation fields run one after the other, so clearing before each one never drops a
        // grid another field is still computing from data it already read.
        if info.parent_type == "Mutation"
            && info.path_node.parent.is_none()
            && let Some(state) = ctx.data_opt::<RequestState>()
        {
            state.evaluations.forget();
        }
        next.run(ctx, info).await
    }
}
