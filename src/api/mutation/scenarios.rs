//! Scenario mutations.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        types::{Scenario, ScenarioKind},
    },
    domain::modelling::scenarios::{self, NewScenario, ScenarioChanges},
    error::AppResult,
};

/// A new scenario.
#[derive(InputObject)]
pub struct CreateScenarioInput {
    /// The model.
    pub model_id: ID,
    /// Name, unique in the model.
    pub name: String,
    /// What the scenario represents.
    pub kind: ScenarioKind,
    /// Free text.
    pub description: Option<String>,
    /// The scenario to inherit from (same model).
    pub base_scenario_id: Option<ID>,
}

/// A copy of a scenario, with its parameter overrides and stored values.
#[derive(InputObject)]
pub struct CloneScenarioInput {
    /// The scenario to copy.
    pub scenario_id: ID,
    /// Name of the copy.
    pub name: String,
    /// Kind of the copy (`null` too means CUSTOM).
    #[graphql(default_with = "Some(ScenarioKind::Custom)")]
    pub kind: Option<ScenarioKind>,
}

/// Changes to a scenario; omitted fields stay as they are (`baseScenarioId: null` removes the base).
#[derive(InputObject)]
pub struct UpdateScenarioInput {
    /// The scenario.
    pub id: ID,
    /// The version you read; a stale one is a `CONFLICT`.
    pub version: i32,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New kind.
    pub kind: Option<ScenarioKind>,
    /// New base scenario (same model, no cycles), or `null` for none.
    pub base_scenario_id: MaybeUndefined<ID>,
}

fn scenario_id(id: &ID, field: &str) -> AppResult<uuid::Uuid> {
    decode(id, NodeKind::Scenario, field)
}

#[derive(Default)]
pub struct ScenarioMutation;

#[Object]
impl ScenarioMutation {
    /// Create a scenario (ANALYST+).
    #[graphql(guard = "Authenticated")]
    async fn create_scenario(
        &self,
        ctx: &Context<'_>,
        input: CreateScenarioInput,
    ) -> ApiResult<Scenario> {
        let st = state(ctx);
        let model = decode(&input.model_id, NodeKind::FinancialModel, "input.modelId")?;
        let base = input
            .base_scenario_id
            .as_ref()
            .map(|id| scenario_id(id, "input.baseScenarioId"))
            .transpose()?;
        let new = NewScenario {
            name: input.name,
            kind: input.kind.into(),
            description: input.description,
            base_scenario_id: base,
        };
        Ok(Scenario(
            scenarios::create(&st.core, &st.caller(), model, new)
                .await
                .api()?,
        ))
    }

    /// Copy a scenario with its parameter overrides and stored values (ANALYST+).
    #[graphql(guard = "Authenticated")]
    async fn clone_scenario(
        &self,
        ctx: &Context<'_>,
        input: CloneScenarioInput,
    ) -> ApiResult<Scenario> {
        let st = state(ctx);
        let source = scenario_id(&input.scenario_id, "input.scenarioId")?;
        Ok(Scenario(
            scenarios::clone(
                &st.core,
                &st.caller(),
                source,
                &input.name,
                input.kind.unwrap_or(ScenarioKind::Custom).into(),
            )
            .await
            .api()?,
        ))
    }

    /// Change a scenario at the version you read (ANALYST+; a locked scenario is a `CONFLICT`).
    #[graphql(guard = "Authenticated")]
    async fn update_scenario(
        &self,
        ctx: &Context<'_>,
        input: UpdateScenarioInput,
    ) -> ApiResult<Scenario> {
        let st = state(ctx);
        let id = scenario_id(&input.id, "input.id")?;
        let base = match &input.base_scenario_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(base) => Some(Some(scenario_id(base, "input.baseScenarioId")?)),
        };
        let changes = ScenarioChanges {
            name: input.name,
            description: input.description,
            kind: input.kind.map(Into::into),
            base_scenario_id: base,
        };
        Ok(Scenario(
            scenarios::update(&st.core, &st.caller(), id, input.version, changes)
                .await
                .api()?,
        ))
    }

    /// Lock (refuse every edit) or unlock a scenario (ADMIN+).
    #[graphql(guard = "Authenticated")]
    async fn lock_scenario(&self, ctx: &Context<'_>, id: ID, locked: bool) -> ApiResult<Scenario> {
        let st = state(ctx);
        let id = scenario_id(&id, "id")?;
        Ok(Scenario(
            scenarios::set_locked(&st.core, &st.caller(), id, locked)
                .await
                .api()?,
        ))
    }

    /// Delete a scenario (ANALYST+): refused (`CONFLICT`) while locked or while another scenario
    /// inherits from it.
    #[graphql(guard = "Authenticated")]
    async fn delete_scenario(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let st = state(ctx);
        let id = scenario_id(&id, "id")?;
        scenarios::delete(&st.core, &st.caller(), id).await.api()
    }
}
