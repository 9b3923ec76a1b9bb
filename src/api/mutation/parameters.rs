//! Parameter mutations.

use async_graphql::{Context, ID, InputObject, Object};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        scalars::Decimal,
        types::{MetricUnit, Parameter, ParameterValue},
    },
    domain::modelling::parameters::{self, NewParameter},
};

/// A new parameter.
#[derive(InputObject)]
pub struct DefineParameterInput {
    /// The model.
    pub model_id: ID,
    /// Identifier used in formulas (`growth_rate`), unique among the model's parameters and metrics.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: MetricUnit,
    /// Value when no scenario overrides it.
    pub default_value: Decimal,
}

/// A scenario's override of a parameter.
#[derive(InputObject)]
pub struct SetParameterValueInput {
    /// The scenario.
    pub scenario_id: ID,
    /// The parameter's key.
    pub parameter_key: String,
    /// The value; `null` removes the override (the base chain or the default applies again).
    pub value: Option<Decimal>,
}

#[derive(Default)]
pub struct ParameterMutation;

#[Object]
impl ParameterMutation {
    /// Define a parameter of a model (ANALYST+).
    #[graphql(guard = "Authenticated")]
    async fn define_parameter(
        &self,
        ctx: &Context<'_>,
        input: DefineParameterInput,
    ) -> ApiResult<Parameter> {
        let st = state(ctx);
        let model = decode(&input.model_id, NodeKind::FinancialModel, "input.modelId")?;
        let new = NewParameter {
            key: input.key,
            name: input.name,
            unit: input.unit.into(),
            default_value: input.default_value.0,
        };
        Ok(Parameter(
            parameters::define(&st.core, &st.caller(), model, new)
                .await
                .api()?,
        ))
    }

    /// Override a parameter in a scenario, or remove the override with `value: null` (ANALYST+;
    /// a locked scenario is a `CONFLICT`). Returns the value the scenario now sees.
    #[graphql(guard = "Authenticated")]
    async fn set_parameter_value(
        &self,
        ctx: &Context<'_>,
        input: SetParameterValueInput,
    ) -> ApiResult<ParameterValue> {
        let st = state(ctx);
        let scenario = decode(&input.scenario_id, NodeKind::Scenario, "input.scenarioId")?;
        let value = input.value.map(|v| v.0);
        Ok(ParameterValue(
            parameters::set_value(
                &st.core,
                &st.caller(),
                scenario,
                &input.parameter_key,
                value,
            )
            .await
            .api()?,
        ))
    }
}
