//! Keeps the per-operation memo of evaluated scenarios (`RequestState::evaluations`) fresh: a
//! mutation may change what a grid was computed from, so every top-level mutation field starts
//! with an empty memo. Queries never write, so within a query every scenario is evaluated once.

use async_graphql::{extensions::ExtensionContext, extensions::ResolveInfo};

use super::context::RequestState;

/// Called before every field is resolved (`api/extension.rs`): a top-level mutation field starts
/// with an empty memo. Mutation fields run one after the other, so clearing before each one never
/// drops a grid another field is still computing from data it already read.
pub fn before_field(ctx: &ExtensionContext<'_>, info: &ResolveInfo<'_>) {
    if info.path_node.parent.is_none()
        && info.parent_type == "Mutation"
        && let Some(state) = ctx.data_opt::<RequestState>()
    {
        state.evaluations.forget();
    }
}
