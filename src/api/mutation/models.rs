//! Model mutations.

use async_graphql::{Context, ID, InputObject, Object};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        scalars::Date,
        types::{FinancialModel, ModelStatus, PeriodGranularity},
    },
    domain::modelling::{
        ModelStatus as DomainStatus,
        models::{self, ModelChanges, NewModel},
    },
};

/// A new model.
#[derive(InputObject)]
pub struct CreateModelInput {
    /// The organization.
    pub organization_id: ID,
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    /// Period length of the timeline.
    #[graphql(default_with = "PeriodGranularity::Month")]
    pub period_granularity: PeriodGranularity,
    /// First period (the first day of a month/quarter/year).
    pub start_period: Date,
    /// Last period, inclusive.
    pub end_period: Date,
}

/// Changes to a model; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateModelInput {
    /// The model.
    pub id: ID,
    /// The version you read; a stale one is a `CONFLICT`.
    pub version: i32,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New currency.
    pub currency: Option<String>,
    /// New status.
    pub status: Option<ModelStatus>,
    /// New first period.
    pub start_period: Option<Date>,
    /// New last period.
    pub end_period: Option<Date>,
}

#[derive(Default)]
pub struct ModelMutation;

#[Object]
impl ModelMutation {
    /// Create a model (ANALYST+).
    #[graphql(guard = "Authenticated")]
    async fn create_model(
        &self,
        ctx: &Context<'_>,
        input: CreateModelInput,
    ) -> ApiResult<FinancialModel> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        let new = NewModel {
            name: input.name,
            description: input.description,
            currency: input.currency,
            period_granularity: input.period_granularity.into(),
            start_period: input.start_period.0,
            end_period: input.end_period.0,
        };
        Ok(FinancialModel(
            models::create(&st.core, &st.caller(), org, new)
                .await
                .api()?,
        ))
    }

    /// Change a model at the version you read (ANALYST+). Shrinking the timeline past stored
    /// values is a `CONFLICT`.
    #[graphql(guard = "Authenticated")]
    async fn update_model(
        &self,
        ctx: &Context<'_>,
        input: UpdateModelInput,
    ) -> ApiResult<FinancialModel> {
        let st = state(ctx);
        let id = decode(&input.id, NodeKind::FinancialModel, "input.id")?;
        let changes = ModelChanges {
            name: input.name,
            description: input.description,
            currency: input.currency,
            status: input.status.map(Into::into),
            start_period: input.start_period.map(|d| d.0),
            end_period: input.end_period.map(|d| d.0),
        };
        Ok(FinancialModel(
            models::update(
                &st.core,
                &st.caller(),
                id,
                input.version,
                changes,
                "model.update",
            )
            .await
            .api()?,
        ))
    }

    /// Archive a model at the version you read (ANALYST+).
    #[graphql(guard = "Authenticated")]
    async fn archive_model(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
    ) -> ApiResult<FinancialModel> {
        let st = state(ctx);
        let model = decode(&id, NodeKind::FinancialModel, "id")?;
        let changes = ModelChanges {
            status: Some(DomainStatus::Archived),
            ..Default::default()
        };
        Ok(FinancialModel(
            models::update(
                &st.core,
                &st.caller(),
                model,
                version,
                changes,
                "model.archive",
            )
            .await
            .api()?,
        ))
    }

    /// Delete a model (ADMIN+); it disappears from the API.
    #[graphql(guard = "Authenticated")]
    async fn delete_model(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let st = state(ctx);
        let model = decode(&id, NodeKind::FinancialModel, "id")?;
        models::delete(&st.core, &st.caller(), model).await.api()
    }
}
