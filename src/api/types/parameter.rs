//! `type Parameter`, `type ParameterValue`.

use async_graphql::{Context, ID, Object};

use super::{MetricUnit, Scenario};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        relay::{NodeKind, global_id},
        scalars::Decimal,
    },
    domain::modelling::{
        loaders::ScenarioById,
        parameters::{EffectiveParameter, ParameterRow},
    },
};

/// A configurable input of a model (a growth rate, a tax rate…), used by formulas by its key.
pub struct Parameter(pub ParameterRow);

#[Object]
impl Parameter {
    /// The parameter's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Parameter, &[self.0.id])
    }

    /// Identifier used in formulas, unique in the model.
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Unit.
    async fn unit(&self) -> MetricUnit {
        self.0.unit.into()
    }

    /// Value when no scenario in the chain overrides it.
    async fn default_value(&self) -> Decimal {
        Decimal(self.0.default_value)
    }
}

/// A parameter as one scenario sees it.
pub struct ParameterValue(pub EffectiveParameter);

#[Object]
impl ParameterValue {
    /// The parameter.
    async fn parameter(&self) -> Parameter {
        Parameter(self.0.parameter.clone())
    }

    /// The effective value.
    async fn value(&self) -> Decimal {
        Decimal(self.0.value)
    }

    /// `null` when set on this scenario (or the model default applies); otherwise the base
    /// scenario it is inherited from.
    async fn inherited_from(&self, ctx: &Context<'_>) -> ApiResult<Option<Scenario>> {
        let Some(id) = self.0.inherited_from else {
            return Ok(None);
        };
        Ok(loader(ctx).load_one(ScenarioById(id)).await?.map(Scenario))
    }

    /// Whether no scenario in the chain overrides it: the model default applies.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
}
