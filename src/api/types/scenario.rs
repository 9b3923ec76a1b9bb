//! `type Scenario`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    FinancialModel, Metric, MetricComparison, MetricDelta, MetricPoint, MetricSeries,
    ParameterValue, ScenarioKind, User,
    series::{delta, evaluate, select},
};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        relay::{NodeKind, decode, global_id},
        scalars::{Date, Decimal},
    },
    domain::modelling::{
        loaders::{
            ModelById, ParameterValuesOfScenario, ParametersOfModel, ScenarioById, ScenariosOfModel,
        },
        parameters::{ParameterValueRow, effective},
        scenarios::{ScenarioRow, chain_of},
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
        User::visible(ctx, self.0.created_by).await
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

    /// Metric series for a range of periods (`from`/`to` default to the model's timeline;
    /// `metricKeys` null means every metric). INPUT values come from this scenario, else its
    /// nearest base scenario that stores one; DERIVED values are computed from their formulas
    /// (a stored value overrides the formula for its period). Values are rounded half-even to 6
    /// places; `null` where they cannot be computed.
    #[graphql(complexity = "crate::api::complexity::series(&metric_keys, child_complexity)")]
    async fn series(
        &self,
        ctx: &Context<'_>,
        metric_keys: Option<Vec<String>>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> ApiResult<Vec<MetricSeries>> {
        let evaluated = evaluate(ctx, &self.0).await?;
        let (metrics, periods, range) = select(&evaluated, metric_keys.as_deref(), from, to)?;
        Ok(metrics
            .into_iter()
            .map(|m| {
                let values = evaluated.values.get(&m.key);
                let points = range
                    .clone()
                    .map(|i| MetricPoint {
                        period: Date(periods[i]),
                        value: values
                            .and_then(|v| v.get(i).copied().flatten())
                            .map(Decimal),
                    })
                    .collect();
                MetricSeries {
                    metric: Metric(m),
                    points,
                }
            })
            .collect())
    }

    /// Per-period deltas against another scenario of the same model: `delta = other − base`
    /// (this scenario is the base), `deltaPercent = delta / |base| × 100`.
    #[graphql(complexity = "crate::api::complexity::compare(&metric_keys, child_complexity)")]
    async fn compare(
        &self,
        ctx: &Context<'_>,
        other_scenario_id: ID,
        metric_keys: Option<Vec<String>>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> ApiResult<Vec<MetricComparison>> {
        let other_id = decode(&other_scenario_id, NodeKind::Scenario, "otherScenarioId")?;
        let other = loader(ctx)
            .load_one(ScenarioById(other_id))
            .await?
            .filter(|o| o.model_id == self.0.model_id)
            .ok_or_else(|| {
                AppError::bad_input(
                    "otherScenarioId",
                    "compare with a scenario of the same model",
                )
            })?;
        let (base, other) = futures_util::try_join!(evaluate(ctx, &self.0), evaluate(ctx, &other))?;
        let (metrics, periods, range) = select(&base, metric_keys.as_deref(), from, to)?;
        Ok(metrics
            .into_iter()
            .map(|m| {
                let b = base.values.get(&m.key);
                let o = other.values.get(&m.key);
                let points = range
                    .clone()
                    .map(|i| {
                        let bv = b.and_then(|v| v.get(i).copied().flatten());
                        let ov = o.and_then(|v| v.get(i).copied().flatten());
                        let (d, p) = delta(bv, ov);
                        MetricDelta {
                            period: Date(periods[i]),
                            base: bv.map(Decimal),
                            other: ov.map(Decimal),
                            delta: d.map(Decimal),
                            delta_percent: p.map(Decimal),
                        }
                    })
                    .collect();
                MetricComparison {
                    metric: Metric(m),
                    points,
                }
            })
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
