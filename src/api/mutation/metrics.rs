//! Metric and metric-value mutations.

use std::borrow::Cow;

use async_graphql::{
    Context, ID, InputObject, InputObjectType, InputType, InputValueError, InputValueResult, Name,
    Object, SimpleObject, Value, registry::Registry,
};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        scalars::{Date, Decimal},
        types::{Metric, MetricKind, MetricUnit, Scenario},
    },
    domain::modelling::{
        metrics::{self, MetricChanges, NewMetric},
        values::{self, ValueInput},
    },
};

/// A new metric.
#[derive(InputObject)]
pub struct DefineMetricInput {
    /// The model.
    pub model_id: ID,
    /// Identifier used in formulas (`gross_margin`), unique among the model's metrics and parameters.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: MetricUnit,
    /// INPUT (stored series) or DERIVED (formula).
    pub kind: MetricKind,
    /// The formula of a DERIVED metric, e.g. `(revenue - cogs) / revenue`.
    pub formula: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Position in lists (default: after the others).
    pub display_order: Option<i32>,
}

/// Changes to a metric; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateMetricInput {
    /// The metric.
    pub id: ID,
    /// The version you read; a stale one is a `CONFLICT`.
    pub version: i32,
    /// New name.
    pub name: Option<String>,
    /// New unit.
    pub unit: Option<MetricUnit>,
    /// New formula (DERIVED metrics only).
    pub formula: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New position.
    pub display_order: Option<i32>,
}

/// One value to store.
#[derive(InputObject)]
pub struct MetricValueInput {
    /// The metric's key.
    pub metric_key: String,
    /// The period: the first day of a month/quarter/year on the model's timeline.
    pub period: Date,
    /// The value; `null` removes the stored value.
    pub value: Option<Decimal>,
}

/// Values to store in one scenario, all or nothing.
#[derive(InputObject)]
#[graphql(name = "UpsertMetricValuesInput")]
struct UpsertMetricValuesInputType {
    /// The scenario.
    scenario_id: ID,
    /// Up to 10,000 values.
    values: Vec<MetricValueInput>,
}

/// `UpsertMetricValuesInput` (the type above in the schema), parsed by moving its fields out of
/// the argument's value: the derived parser clones each field first, which for `values` is a
/// whole copy of up to 10,000 parsed JSON objects alive at once with the original.
pub struct UpsertMetricValuesInput {
    /// The scenario.
    pub scenario_id: ID,
    /// Up to 10,000 values.
    pub values: Vec<MetricValueInput>,
}

impl InputType for UpsertMetricValuesInput {
    type RawValueType = Self;

    fn type_name() -> Cow<'static, str> {
        UpsertMetricValuesInputType::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        UpsertMetricValuesInputType::create_type_info(registry)
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        let Some(Value::Object(mut fields)) = value else {
            return Err(InputValueError::expected_type(value.unwrap_or_default()));
        };
        let scenario_id =
            ID::parse(fields.swap_remove("scenarioId")).map_err(InputValueError::propagate)?;
        let values = Vec::<MetricValueInput>::parse(fields.swap_remove("values"))
            .map_err(InputValueError::propagate)?;
        Ok(Self {
            scenario_id,
            values,
        })
    }

    fn to_value(&self) -> Value {
        Value::Object(
            [
                (Name::new("scenarioId"), self.scenario_id.to_value()),
                (Name::new("values"), self.values.to_value()),
            ]
            .into_iter()
            .collect(),
        )
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }
}

impl InputObjectType for UpsertMetricValuesInput {}

/// What `upsertMetricValues` did.
#[derive(SimpleObject)]
pub struct UpsertMetricValuesPayload {
    /// The scenario.
    pub scenario: Scenario,
    /// Values inserted or changed.
    pub upserted: i32,
    /// Values removed.
    pub removed: i32,
}

#[derive(Default)]
pub struct MetricMutation;

#[Object]
impl MetricMutation {
    /// Define a metric (ANALYST+). A formula with a syntax error, an unknown key or a dependency
    /// cycle is `BAD_USER_INPUT` on `input.formula`, with the column or the cycle in the message.
    #[graphql(guard = "Authenticated")]
    async fn define_metric(
        &self,
        ctx: &Context<'_>,
        input: DefineMetricInput,
    ) -> ApiResult<Metric> {
        let st = state(ctx);
        let model = decode(&input.model_id, NodeKind::FinancialModel, "input.modelId")?;
        let new = NewMetric {
            key: input.key,
            name: input.name,
            unit: input.unit.into(),
            kind: input.kind.into(),
            formula: input.formula,
            description: input.description,
            display_order: input.display_order,
        };
        Ok(Metric(
            metrics::define(&st.core, &st.caller(), model, new)
                .await
                .api()?,
        ))
    }

    /// Change a metric at the version you read (ANALYST+).
    #[graphql(guard = "Authenticated")]
    async fn update_metric(
        &self,
        ctx: &Context<'_>,
        input: UpdateMetricInput,
    ) -> ApiResult<Metric> {
        let st = state(ctx);
        let id = decode(&input.id, NodeKind::Metric, "input.id")?;
        let changes = MetricChanges {
            name: input.name,
            unit: input.unit.map(Into::into),
            formula: input.formula,
            description: input.description,
            display_order: input.display_order,
        };
        Ok(Metric(
            metrics::update(&st.core, &st.caller(), id, input.version, changes)
                .await
                .api()?,
        ))
    }

    /// Delete a metric and its stored values (ANALYST+); `CONFLICT` while a formula uses it.
    #[graphql(guard = "Authenticated")]
    async fn delete_metric(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let st = state(ctx);
        let id = decode(&id, NodeKind::Metric, "id")?;
        metrics::delete(&st.core, &st.caller(), id).await.api()
    }

    /// Store up to 10,000 values in one scenario, all or nothing (ANALYST+; a locked scenario is
    /// a `CONFLICT`). Each value's period must be on the model's timeline and granularity.
    #[graphql(guard = "Authenticated")]
    async fn upsert_metric_values(
        &self,
        ctx: &Context<'_>,
        input: UpsertMetricValuesInput,
    ) -> ApiResult<UpsertMetricValuesPayload> {
        let st = state(ctx);
        let scenario = decode(&input.scenario_id, NodeKind::Scenario, "input.scenarioId")?;
        let values = input
            .values
            .into_iter()
            .map(|v| ValueInput {
                metric_key: v.metric_key,
                period: v.period.0,
                value: v.value.map(|d| d.0),
            })
            .collect();
        let outcome = values::upsert(&st.core, &st.caller(), scenario, values)
            .await
            .api()?;
        Ok(UpsertMetricValuesPayload {
            scenario: Scenario(outcome.scenario),
            upserted: outcome.upserted,
            removed: outcome.removed,
        })
    }
}
