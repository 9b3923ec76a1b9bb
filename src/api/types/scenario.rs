//! `type Scenario`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use std::collections::HashMap;

use uuid::Uuid;

use super::{FinancialModel, ParameterValue, ScenarioKind, User};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        guards::can_see_user,
        relay::{NodeKind, global_id},
    },
    domain::{
        loader::UserById,
        modelling::{
            loaders::{
                ModelById, ParameterValuesOfScenario, ParametersOfModel, ScenarioById,
                ScenariosOfModel,
            },
            parameters::{ParameterValueRow, effective},
            scenarios::{ScenarioRow, chain_of},
        },
    },
    error::AppError,
};

/// A case of a model (base, upside, downside, custom). It inherits every value and parameter it
/// does not override from its base scenario.
pub struct Scenario(pub ScenarioRow);

#[Object]
impl Scenario {
    /// The scenario's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Scenario, &[self.0.id])
    }

    /// The model.
    async fn model(&self, ctx: &Context<'_>) -> ApiResult<FinancialModel> {
        let row = loader(ctx)
            .load_one(ModelById(self.0.model_id))
            .await?
            .ok_or(AppError::NotFound("model"))?;
        Ok(FinancialModel(row))
    }

    /// Name, unique in the model.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the scenario represents.
    async fn kind(&self) -> ScenarioKind {
        self.0.kind.into()
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The scenario this one inherits from (same model).
    async fn base_scenario(&self, ctx: &Context<'_>) -> ApiResult<Option<Scenario>> {
        let Some(base) = self.0.base_scenario_id else {
            return Ok(None);
        };
        Ok(loader(ctx)
            .load_one(ScenarioById(base))
            .await?
            .map(Scenario))
    }

    /// A locked scenario refuses every edit (`CONFLICT`) until an ADMIN unlocks it.
    async fn is_locked(&self) -> bool {
        self.0.is_locked
    }

    /// Version for optimistic concurrency: pass it back to `updateScenario`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// Who created the scenario; `null` when that user is no longer visible to you.
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        if !can_see_user(ctx, id).await? {
            return Ok(None);
        }
        Ok(loader(ctx).load_one(UserById(id)).await?.map(User))
    }

    /// Every parameter of the model as this scenario sees it: its own override, else the
    /// nearest base scenario's (`inheritedFrom`), else the model default (`isDefault`).
    async fn parameter_values(&self, ctx: &Context<'_>) -> ApiResult<Vec<ParameterValue>> {
        let scenarios: HashMap<Uuid, ScenarioRow> = loader(ctx)
            .load_one(ScenariosOfModel(self.0.model_id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let chain = chain_of(self.0.id, &scenarios);
        let parameters = loader(ctx)
            .load_one(ParametersOfModel(self.0.model_id))
            .await?
            .unwrap_or_default();
        let overrides: HashMap<Uuid, Vec<ParameterValueRow>> = loader(ctx)
            .load_many(chain.iter().map(|id| ParameterValuesOfScenario(*id)))
            .await?
            .into_iter()
            .map(|(k, v)| (k.0, v))
            .collect();
        Ok(effective(self.0.id, &parameters, &scenarios, &overrides)
            .into_iter()
            .map(ParameterValue)
            .collect())
    }

    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
