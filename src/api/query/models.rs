//! `model`, `scenario`.

use async_graphql::{Context, ID, Object};

use crate::api::{
    errors::ApiResult,
    guards::{Authenticated, visible_model, visible_scenario},
    relay::{NodeKind, decode},
    types::{FinancialModel, Scenario},
};

#[derive(Default)]
pub struct ModelQuery;

#[Object]
impl ModelQuery {
    /// A model by ID; `null` when it does not exist or is not visible to you.
    #[graphql(guard = "Authenticated")]
    async fn model(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<FinancialModel>> {
        let id = decode(&id, NodeKind::FinancialModel, "id")?;
        Ok(visible_model(ctx, id).await?.map(FinancialModel))
    }

    /// A scenario by ID; `null` when it does not exist or is not visible to you.
    #[graphql(guard = "Authenticated")]
    async fn scenario(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Scenario>> {
        let id = decode(&id, NodeKind::Scenario, "id")?;
        Ok(visible_scenario(ctx, id).await?.map(Scenario))
    }
}
