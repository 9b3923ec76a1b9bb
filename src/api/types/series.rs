//! `Scenario.series` and `Scenario.compare`: evaluated metric series and their deltas, as the
//! domain computes them (`domain::modelling::selection`), in GraphQL form.

use async_graphql::SimpleObject;

use super::Metric;
use crate::{
    api::scalars::{Date, Decimal},
    domain::modelling::selection,
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

impl From<selection::Series> for MetricSeries {
    fn from(series: selection::Series) -> Self {
        Self {
            metric: Metric(series.metric),
            points: series
                .points
                .into_iter()
                .map(|p| MetricPoint {
                    period: Date(p.period),
                    value: p.value.map(Decimal),
                })
                .collect(),
        }
    }
}

impl From<selection::Comparison> for MetricComparison {
    fn from(comparison: selection::Comparison) -> Self {
        Self {
            metric: Metric(comparison.metric),
            points: comparison
                .points
                .into_iter()
                .map(|p| MetricDelta {
                    period: Date(p.period),
                    base: p.base.map(Decimal),
                    other: p.other.map(Decimal),
                    delta: p.delta.map(Decimal),
                    delta_percent: p.delta_percent.map(Decimal),
                })
                .collect(),
        }
    }
}
