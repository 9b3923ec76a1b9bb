//! `model`.

use async_graphql::{Context, ID, Object};

use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        guards::can_see_organization,
        relay::{NodeKind, decode},
        types::FinancialModel,
    },
    domain::modelling::loaders::ModelById,
};

#[derive(Default)]
pub struct ModelQuery;

#[Object]
impl ModelQuery {
    /// A model by ID; `null` when it does not exist or is not visible to you.
    async fn model(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<FinancialModel>> {
        let id = decode(&id, NodeKind::FinancialModel, "id")?;
        match loader(ctx).load_one(ModelById(id)).await? {
            Some(m) if can_see_organization(ctx, m.organization_id).await? => {
                Ok(Some(FinancialModel(m)))
            }
            _ => Ok(None),
        }
    }
}
