//! `type Metric`.

use async_graphql::{Context, ID, Object};

use super::{FinancialModel, MetricKind, MetricUnit};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        relay::{NodeKind, global_id},
    },
    domain::modelling::{
        loaders::{DependenciesOfMetric, MetricById},
        metrics::MetricRow,
    },
};

/// A metric of a model: an INPUT time series, or a DERIVED one computed from its formula.
pub struct Metric(pub MetricRow);

#[Object]
impl Metric {
    /// The metric's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Metric, &[self.0.id])
    }

    /// The model.
    async fn model(&self, ctx: &Context<'_>) -> ApiResult<FinancialModel> {
        FinancialModel::fetch(ctx, self.0.model_id).await
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

    /// INPUT or DERIVED.
    async fn kind(&self) -> MetricKind {
        self.0.kind.into()
    }

    /// The formula of a DERIVED metric, e.g. `(revenue - cogs) / revenue`.
    async fn formula(&self) -> Option<&str> {
        self.0.formula.as_deref()
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Position in lists.
    async fn display_order(&self) -> i32 {
        self.0.display_order
    }

    /// Version for optimistic concurrency: pass it back to `updateMetric`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The metrics this metric's formula reads (not itself).
    async fn depends_on(&self, ctx: &Context<'_>) -> ApiResult<Vec<Metric>> {
        let ids = loader(ctx)
            .load_one(DependenciesOfMetric(self.0.id))
            .await?
            .unwrap_or_default();
        let rows = loader(ctx)
            .load_many(ids.iter().map(|id| MetricById(*id)))
            .await?;
        let mut metrics: Vec<Metric> = rows.into_values().map(Metric).collect();
        metrics.sort_by(|a, b| a.0.key.cmp(&b.0.key));
        Ok(metrics)
    }
}
