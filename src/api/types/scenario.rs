//! `type Scenario`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{FinancialModel, MetricComparison, MetricSeries, ParameterValue, ScenarioKind, User};
use crate::{
    api::{
        context::{loader, state},
        errors::ApiResult,
        relay::{NodeKind, decode, global_id},
        scalars::Date,
    },
    domain::modelling::{
        loaders::ScenarioById, parameters::effective_values, scenarios::ScenarioRow,
        selection::SeriesRequest, series,
    },
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
        FinancialModel::fetch(ctx, self.0.model_id).await
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
        Ok(effective_values(loader(ctx), &self.0)
            .await?
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
        let st = state(ctx);
        let request = series_request(metric_keys.as_deref(), from, to);
        let series =
            series::series(&st.core, &st.evaluations, loader(ctx), &self.0, &request).await?;
        Ok(series.into_iter().map(MetricSeries::from).collect())
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
        let other = decode(&other_scenario_id, NodeKind::Scenario, "otherScenarioId")?;
        let st = state(ctx);
        let request = series_request(metric_keys.as_deref(), from, to);
        let compared = series::compare(
            &st.core,
            &st.evaluations,
            loader(ctx),
            &self.0,
            other,
            &request,
        )
        .await?;
        Ok(compared.into_iter().map(MetricComparison::from).collect())
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

/// The arguments of `series` and `compare` as the domain takes them.
fn series_request<'a>(
    metric_keys: Option<&'a [String]>,
    from: Option<Date>,
    to: Option<Date>,
) -> SeriesRequest<'a> {
    SeriesRequest {
        metric_keys,
        from: from.map(|d| d.0),
        to: to.map(|d| d.0),
    }
}
