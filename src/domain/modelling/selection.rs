//! Reading an evaluated grid: the metrics and periods a request selects, their series, and the
//! per-period deltas between two scenarios. Pure functions over [`ScenarioGrid`]s, so the rules
//! (which dates are valid bounds, how a delta and its percentage are computed) hold whoever asks.

use std::ops::Range;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{metrics::MetricRow, models::ModelRow, periods::is_boundary, series::ScenarioGrid};
use crate::error::{AppError, AppResult};

/// What a series or comparison asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeriesRequest<'a> {
    /// These metrics, in this order; every metric of the model (display order) when `None`.
    pub metric_keys: Option<&'a [String]>,
    /// First period (inclusive); the timeline's first when `None`.
    pub from: Option<NaiveDate>,
    /// Last period (inclusive); the timeline's last when `None`.
    pub to: Option<NaiveDate>,
}

/// The metrics and periods a request selects from a grid.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The metrics, in the order asked for.
    pub metrics: Vec<MetricRow>,
    /// Every period of the model's timeline.
    pub periods: Vec<NaiveDate>,
    /// The selected periods, as indices into `periods` (and into the grid's series).
    pub range: Range<usize>,
}

/// One period's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// The period.
    pub period: NaiveDate,
    /// The value (full precision); `None` when it cannot be computed.
    pub value: Option<Decimal>,
}

/// A metric's values over the selected periods.
#[derive(Debug, Clone)]
pub struct Series {
    /// The metric.
    pub metric: MetricRow,
    /// One point per selected period, in order.
    pub points: Vec<Point>,
}

/// One period of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaPoint {
    /// The period.
    pub period: NaiveDate,
    /// The base scenario's value.
    pub base: Option<Decimal>,
    /// The other scenario's value.
    pub other: Option<Decimal>,
    /// `other − base`.
    pub delta: Option<Decimal>,
    /// `delta / |base| × 100`.
    pub delta_percent: Option<Decimal>,
}

/// A metric compared between two scenarios.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The metric.
    pub metric: MetricRow,
    /// One delta per selected period, in order.
    pub points: Vec<DeltaPoint>,
}

/// The requested metrics and period range of `grid`, validated: `from` and `to` must be periods
/// of the timeline (`BAD_USER_INPUT` on `from`/`to` otherwise, or when `to` precedes `from`),
/// and every key a metric of the model (`BAD_USER_INPUT` on `metricKeys`).
pub fn select(grid: &ScenarioGrid, request: &SeriesRequest<'_>) -> AppResult<Selection> {
    let periods = grid.model.periods();
    let range = period_range(&grid.model, &periods, request, ("from", "to"))?;
    let metrics = match request.metric_keys {
        None => grid.metrics.clone(),
        Some(keys) => keys
            .iter()
            .map(|k| {
                grid.metrics
                    .iter()
                    .find(|m| m.key == *k)
                    .cloned()
                    .ok_or_else(|| {
                        AppError::bad_input("metricKeys", format!("the model has no metric `{k}`"))
                    })
            })
            .collect::<AppResult<Vec<_>>>()?,
    };
    Ok(Selection {
        metrics,
        periods,
        range,
    })
}

/// The indices into `periods` (the timeline of `model`) that `request.from`…`request.to`
/// select: both must be periods of the timeline and in order (`BAD_USER_INPUT` on
/// `fields.0`/`fields.1` otherwise). The one rule of a period range, for `series`, `compare`
/// and reports alike.
pub fn period_range(
    model: &ModelRow,
    periods: &[NaiveDate],
    request: &SeriesRequest<'_>,
    fields: (&str, &str),
) -> AppResult<Range<usize>> {
    let position = |date: Option<NaiveDate>, field: &str, default: usize| -> AppResult<usize> {
        match date {
            None => Ok(default),
            Some(d) => periods
                .iter()
                .position(|p| *p == d)
                .filter(|_| is_boundary(d, model.period_granularity))
                .ok_or_else(|| {
                    AppError::bad_input(
                        field,
                        format!(
                            "{d} is not a period of the model's timeline ({} … {})",
                            model.start_period, model.end_period
                        ),
                    )
                }),
        }
    };
    let start = position(request.from, fields.0, 0)?;
    let end = position(request.to, fields.1, periods.len().saturating_sub(1))?;
    if end < start {
        return Err(AppError::bad_input(
            fields.1,
            format!("`{}` must not be before `{}`", fields.1, fields.0),
        ));
    }
    Ok(start..end + 1)
}

/// The value of `key` at period index `i` of `grid`.
fn value_at(grid: &ScenarioGrid, key: &str, i: usize) -> Option<Decimal> {
    grid.values
        .get(key)
        .and_then(|series| series.get(i).copied().flatten())
}

impl Selection {
    /// For every selected metric, its points over the selected periods: `point(key, i, period)`
    /// builds the point of period index `i`.
    fn per_metric<P>(
        self,
        point: impl Fn(&str, usize, NaiveDate) -> P,
    ) -> impl Iterator<Item = (MetricRow, Vec<P>)> {
        let Selection {
            metrics,
            periods,
            range,
        } = self;
        metrics.into_iter().map(move |metric| {
            let points = range
                .clone()
                .map(|i| point(&metric.key, i, periods[i]))
                .collect();
            (metric, points)
        })
    }
}

/// The selected series of `grid`.
pub fn series_of(grid: &ScenarioGrid, selection: Selection) -> Vec<Series> {
    selection
        .per_metric(|key, i, period| Point {
            period,
            value: value_at(grid, key, i),
        })
        .map(|(metric, points)| Series { metric, points })
        .collect()
}

/// The selected series of `base` and `other` (scenarios of the same model), period by period.
pub fn compare_grids(
    base: &ScenarioGrid,
    other: &ScenarioGrid,
    selection: Selection,
) -> Vec<Comparison> {
    selection
        .per_metric(|key, i, period| {
            let b = value_at(base, key, i);
            let o = value_at(other, key, i);
            let (delta, delta_percent) = delta(b, o);
            DeltaPoint {
                period,
                base: b,
                other: o,
                delta,
                delta_percent,
            }
        })
        .map(|(metric, points)| Comparison { metric, points })
        .collect()
}

/// `delta = other − base` and `deltaPercent = delta / |base| × 100` of one period: `None` when
/// an operand is `None`, the percentage also when `base` is 0, and either when it overflows.
pub fn delta(base: Option<Decimal>, other: Option<Decimal>) -> (Option<Decimal>, Option<Decimal>) {
    let (Some(base), Some(other)) = (base, other) else {
        return (None, None);
    };
    let delta = other.checked_sub(base);
    let percent = match delta {
        Some(d) if !base.is_zero() => d
            .checked_div(base.abs())
            .and_then(|r| r.checked_mul(Decimal::ONE_HUNDRED)),
        _ => None,
    };
    (delta, percent)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::modelling::{
        MetricKind, MetricUnit, ModelRow, ModelStatus, PeriodGranularity,
    };

    fn d(value: i64) -> Decimal {
        Decimal::from(value)
    }

    fn date(y: i32, m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, 1).expect("a date")
    }

    fn metric(key: &str, display_order: i32) -> MetricRow {
        MetricRow {
            id: Uuid::new_v4(),
            model_id: Uuid::nil(),
            key: key.to_owned(),
            name: key.to_owned(),
            unit: MetricUnit::Number,
            kind: MetricKind::Input,
            formula: None,
            description: None,
            display_order,
            version: 1,
            created_at: Utc::now(),
        }
    }

    /// A quarterly model over 2026 (4 periods) with `revenue` and `cost`.
    fn grid(revenue: [Option<Decimal>; 4], cost: [Option<Decimal>; 4]) -> ScenarioGrid {
        let now = Utc::now();
        ScenarioGrid {
            model: ModelRow {
                id: Uuid::nil(),
                organization_id: Uuid::nil(),
                name: "Plan".into(),
                description: None,
                currency: "EUR".into(),
                period_granularity: PeriodGranularity::Quarter,
                start_period: date(2026, 1),
                end_period: date(2026, 10),
                status: ModelStatus::Active,
                created_by: None,
                version: 1,
                created_at: now,
                updated_at: now,
            },
            metrics: vec![metric("revenue", 0), metric("cost", 1)],
            values: HashMap::from([
                ("revenue".to_owned(), revenue.to_vec()),
                ("cost".to_owned(), cost.to_vec()),
            ]),
        }
    }

    fn plain() -> ScenarioGrid {
        grid(
            [Some(d(100)), Some(d(110)), None, Some(d(130))],
            [Some(d(50)); 4],
        )
    }

    fn keys(selection: &Selection) -> Vec<&str> {
        selection.metrics.iter().map(|m| m.key.as_str()).collect()
    }

    #[test]
    fn select_defaults_to_every_metric_over_the_whole_timeline() {
        let selection = select(&plain(), &SeriesRequest::default()).expect("valid");
        assert_eq!(keys(&selection), ["revenue", "cost"]);
        assert_eq!(selection.range, 0..4);
        assert_eq!(selection.periods.len(), 4);
    }

    #[test]
    fn select_slices_an_inclusive_range_in_the_order_asked() {
        let wanted = ["cost".to_owned(), "revenue".to_owned()];
        let request = SeriesRequest {
            metric_keys: Some(&wanted),
            from: Some(date(2026, 4)),
            to: Some(date(2026, 7)),
        };
        let selection = select(&plain(), &request).expect("valid");
        assert_eq!(keys(&selection), ["cost", "revenue"]);
        assert_eq!(selection.range, 1..3);
        let series = series_of(&plain(), selection);
        assert_eq!(
            series[1].points,
            [
                Point {
                    period: date(2026, 4),
                    value: Some(d(110))
                },
                Point {
                    period: date(2026, 7),
                    value: None
                },
            ]
        );
        // One period: `from` = `to`.
        let one = SeriesRequest {
            from: Some(date(2026, 10)),
            to: Some(date(2026, 10)),
            ..SeriesRequest::default()
        };
        assert_eq!(select(&plain(), &one).expect("valid").range, 3..4);
    }

    #[test]
    fn select_refuses_dates_off_the_timeline_reversed_ranges_and_unknown_keys() {
        let field = |request: SeriesRequest<'_>| match select(&plain(), &request) {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        };
        let mid_quarter = SeriesRequest {
            from: Some(date(2026, 2)),
            ..SeriesRequest::default()
        };
        assert_eq!(field(mid_quarter).as_deref(), Some("from"));
        let after_the_end = SeriesRequest {
            to: Some(date(2027, 1)),
            ..SeriesRequest::default()
        };
        assert_eq!(field(after_the_end).as_deref(), Some("to"));
        let reversed = SeriesRequest {
            from: Some(date(2026, 7)),
            to: Some(date(2026, 4)),
            ..SeriesRequest::default()
        };
        assert_eq!(field(reversed).as_deref(), Some("to"));
        let unknown = ["revenue".to_owned(), "ebitda".to_owned()];
        let request = SeriesRequest {
            metric_keys: Some(&unknown),
            ..SeriesRequest::default()
        };
        assert_eq!(field(request).as_deref(), Some("metricKeys"));
    }

    #[test]
    fn delta_is_other_minus_base_and_its_percentage_of_the_base_magnitude() {
        assert_eq!(
            delta(Some(d(100)), Some(d(90))),
            (Some(d(-10)), Some(d(-10)))
        );
        // A negative base: the percentage is of its magnitude, so a rise stays positive.
        assert_eq!(
            delta(Some(d(-200)), Some(d(-150))),
            (Some(d(50)), Some(d(25)))
        );
        assert_eq!(
            delta(Some(d(0)), Some(d(5))),
            (Some(d(5)), None),
            "no percentage of zero"
        );
        assert_eq!(delta(None, Some(d(5))), (None, None));
        assert_eq!(delta(Some(d(5)), None), (None, None));
        assert_eq!(
            delta(Some(Decimal::MIN), Some(Decimal::MAX)),
            (None, None),
            "an overflow is null, not a panic"
        );
    }

    #[test]
    fn compare_pairs_the_selected_periods_of_both_grids() {
        let base = plain();
        let other = grid(
            [Some(d(80)), Some(d(110)), Some(d(120)), None],
            [Some(d(0)); 4],
        );
        let wanted = ["revenue".to_owned()];
        let request = SeriesRequest {
            metric_keys: Some(&wanted),
            from: Some(date(2026, 1)),
            to: Some(date(2026, 7)),
        };
        let selection = select(&base, &request).expect("valid");
        let compared = compare_grids(&base, &other, selection);
        assert_eq!(compared.len(), 1);
        assert_eq!(compared[0].metric.key, "revenue");
        let points = &compared[0].points;
        assert_eq!(points.len(), 3);
        assert_eq!(
            points[0],
            DeltaPoint {
                period: date(2026, 1),
                base: Some(d(100)),
                other: Some(d(80)),
                delta: Some(d(-20)),
                delta_percent: Some(d(-20)),
            }
        );
        assert_eq!(points[1].delta, Some(d(0)));
        assert_eq!(points[1].delta_percent, Some(d(0)));
        // The base has no value in Q3: no delta, both values as they are.
        assert_eq!(
            (points[2].base, points[2].other, points[2].delta),
            (None, Some(d(120)), None)
        );
    }
}
