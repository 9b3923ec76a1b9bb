//! `Scenario.series` and `Scenario.compare`: evaluated metric series and their deltas.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, SimpleObject};
use chrono::NaiveDate;
use rust_decimal::Decimal as Dec;
use uuid::Uuid;

use super::Metric;
use crate::{
    api::{
        context::{loader, state},
        errors::ApiResult,
        scalars::{Date, Decimal},
    },
    domain::modelling::{
        loaders::{
            MetricValuesOfScenario, MetricsOfModel, ModelById, ParameterValuesOfScenario,
            ParametersOfModel, ScenariosOfModel,
        },
        metrics::MetricRow,
        periods::is_boundary,
        scenarios::{ScenarioRow, chain_of},
        series::{ModelData, ScenarioGrid},
    },
    error::{AppError, AppResult},
};

/// One period's value; `null` when it cannot be computed (missing input, division by zero, a
/// period outside the timeline).
#[derive(SimpleObject)]
pub struct MetricPoint {
    /// The period.
    pub period: Date,
    /// The value, rounded half-even to 6 places.
    pub value: Option<Decimal>,
}

/// A metric's values over a range of periods.
#[derive(SimpleObject)]
pub struct MetricSeries {
    /// The metric.
    pub metric: Metric,
    /// One point per period, in order.
    pub points: Vec<MetricPoint>,
}

/// One period of a comparison: `delta = other − base`, `deltaPercent = delta / |base| × 100`
/// (`null` when an operand is `null` or `base` is 0).
#[derive(SimpleObject)]
pub struct MetricDelta {
    /// The period.
    pub period: Date,
    /// This scenario's value.
    pub base: Option<Decimal>,
    /// The other scenario's value.
    pub other: Option<Decimal>,
    /// `other − base`.
    pub delta: Option<Decimal>,
    /// `delta / |base| × 100`.
    pub delta_percent: Option<Decimal>,
}

/// A metric compared between two scenarios.
#[derive(SimpleObject)]
pub struct MetricComparison {
    /// The metric.
    pub metric: Metric,
    /// One delta per period, in order.
    pub points: Vec<MetricDelta>,
}

/// A scenario evaluated over its model's whole timeline.
pub type Evaluated = ScenarioGrid;

/// Evaluate a scenario, once per operation however many fields ask for it (the grid is shared;
/// each field slices it). Every load goes through the request's DataLoader, so the series of many
/// scenarios take a constant number of statements; the evaluation itself is charged to the
/// request's budget and runs off the async workers (`Core::evaluate`).
pub async fn evaluate(ctx: &Context<'_>, scenario: &ScenarioRow) -> ApiResult<Arc<Evaluated>> {
    let st = state(ctx);
    let grid = st
        .core
        .evaluate(&st.evaluations, scenario.id, || load(ctx, scenario))
        .await?;
    Ok(grid)
}

/// Everything the evaluation of `scenario` reads.
async fn load(ctx: &Context<'_>, scenario: &ScenarioRow) -> ApiResult<ModelData> {
    let l = loader(ctx);
    let model = l
        .load_one(ModelById(scenario.model_id))
        .await?
        .ok_or(AppError::NotFound("model"))?;
    let scenarios: HashMap<Uuid, ScenarioRow> = l
        .load_one(ScenariosOfModel(model.id))
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let chain = chain_of(scenario.id, &scenarios);
    let metrics = l
        .load_one(MetricsOfModel(model.id))
        .await?
        .unwrap_or_default();
    let parameters = l
        .load_one(ParametersOfModel(model.id))
        .await?
        .unwrap_or_default();
    let overrides = l
        .load_many(chain.iter().map(|id| ParameterValuesOfScenario(*id)))
        .await?
        .into_iter()
        .map(|(k, v)| (k.0, v))
        .collect();
    let values = l
        .load_many(chain.iter().map(|id| MetricValuesOfScenario(*id)))
        .await?
        .into_iter()
        .map(|(k, v)| (k.0, v))
        .collect();
    Ok(ModelData {
        model,
        metrics,
        parameters,
        scenarios,
        overrides,
        values,
    })
}

/// The requested metrics (all when `None`) and period range (default: the whole timeline),
/// validated; returns the metrics and the index range of periods.
pub fn select(
    evaluated: &Evaluated,
    metric_keys: Option<&[String]>,
    from: Option<Date>,
    to: Option<Date>,
) -> AppResult<(Vec<MetricRow>, Vec<NaiveDate>, std::ops::Range<usize>)> {
    let periods = evaluated.model.periods();
    let position = |date: Option<Date>, field: &str, default: usize| -> AppResult<usize> {
        match date {
            None => Ok(default),
            Some(Date(d)) => periods
                .iter()
                .position(|p| *p == d)
                .filter(|_| is_boundary(d, evaluated.model.period_granularity))
                .ok_or_else(|| {
                    AppError::bad_input(
                        field,
                        format!(
                            "{d} is not a period of the model's timeline ({} … {})",
                            evaluated.model.start_period, evaluated.model.end_period
                        ),
                    )
                }),
        }
    };
    let start = position(from, "from", 0)?;
    let end = position(to, "to", periods.len().saturating_sub(1))?;
    if end < start {
        return Err(AppError::bad_input("to", "`to` must not be before `from`"));
    }
    let metrics = match metric_keys {
        None => evaluated.metrics.clone(),
        Some(keys) => keys
            .iter()
            .map(|k| {
                evaluated
                    .metrics
                    .iter()
                    .find(|m| m.key == *k)
                    .cloned()
                    .ok_or_else(|| {
                        AppError::bad_input("metricKeys", format!("the model has no metric `{k}`"))
                    })
            })
            .collect::<AppResult<Vec<_>>>()?,
    };
    Ok((metrics, periods, start..end + 1))
}

/// `delta` and `deltaPercent` of one period.
pub fn delta(base: Option<Dec>, other: Option<Dec>) -> (Option<Dec>, Option<Dec>) {
    let (Some(base), Some(other)) = (base, other) else {
        return (None, None);
    };
    let delta = other.checked_sub(base);
    let percent = match delta {
        Some(d) if !base.is_zero() => d
            .checked_div(base.abs())
            .and_then(|r| r.checked_mul(Dec::ONE_HUNDRED)),
        _ => None,
    };
    (delta, percent)
}
