//! Stored metric values: the bulk, all-or-nothing upsert.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::{
    prelude::*,
    sql_types::{Array, Date, Numeric, Uuid as SqlUuid},
};
use diesel_async::RunQueryDsl;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::{
    metrics::MetricRow,
    numbers::check_stored,
    periods::is_boundary,
    scenarios::{LockedScenario, ScenarioRow, ensure_unlocked, lock_scenario},
};
use crate::{
    db::schema::{metric_values, metrics},
    domain::{Core, audit::Trail, auth::Caller, organizations::OrgRole},
    error::{AppError, AppResult},
};

/// Most values one upsert takes.
pub const MAX_VALUES: usize = 10_000;

/// One value to store (`None` removes the stored value).
#[derive(Debug, Clone)]
pub struct ValueInput {
    /// The metric's key.
    pub metric_key: String,
    /// The period (first day of its month/quarter/year).
    pub period: NaiveDate,
    /// The value, or `None` to remove it.
    pub value: Option<Decimal>,
}

/// A stored value.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = metric_values, check_for_backend(diesel::pg::Pg))]
pub struct MetricValueRow {
    /// The scenario.
    pub scenario_id: Uuid,
    /// The metric.
    pub metric_id: Uuid,
    /// The period.
    pub period: NaiveDate,
    /// The value.
    pub value: Decimal,
}

/// What an upsert did.
#[derive(Debug, Clone)]
pub struct UpsertOutcome {
    /// The scenario.
    pub scenario: ScenarioRow,
    /// Values inserted or changed.
    pub upserted: i32,
    /// Values removed.
    pub removed: i32,
}

/// Rows per statement of the upsert and of the delete. Each statement binds one array per
/// column (`unnest`), so a chunk costs 36 bytes a row in the connection's buffers, which keep
/// their largest message for the connection's life; a 720-value call is one statement, a
/// 10,000-value call ten, all in the one transaction.
pub const CHUNK: usize = 1_000;

/// A checked input, as columns: what the statements bind, and nothing else.
#[derive(Default)]
struct Columns {
    metric_ids: Vec<Uuid>,
    periods: Vec<NaiveDate>,
    values: Vec<Decimal>,
}

/// What the audit event says of a call: the metrics and the span of periods it touched.
struct Touched<'m> {
    keys: BTreeSet<&'m str>,
    periods: BTreeSet<NaiveDate>,
}

/// Check every input against the model (metric, period, duplicates, precision) and split it
/// into the values to store and those to remove. Consumes the input: its strings are gone
/// before any statement runs.
fn check<'m>(
    values: Vec<ValueInput>,
    model: &super::models::ModelRow,
    model_metrics: &'m [MetricRow],
) -> AppResult<(Columns, Columns, Touched<'m>)> {
    let by_key: HashMap<&str, &MetricRow> =
        model_metrics.iter().map(|m| (m.key.as_str(), m)).collect();
    let mut seen = HashSet::with_capacity(values.len());
    let (mut store, mut remove) = (Columns::default(), Columns::default());
    let mut touched = Touched {
        keys: BTreeSet::new(),
        periods: BTreeSet::new(),
    };
    for (i, input) in values.into_iter().enumerate() {
        let metric = by_key.get(input.metric_key.as_str()).ok_or_else(|| {
            AppError::bad_input(
                format!("input.values.{i}.metricKey"),
                format!("the model has no metric `{}`", input.metric_key),
            )
        })?;
        if !is_boundary(input.period, model.period_granularity)
            || input.period < model.start_period
            || input.period > model.end_period
        {
            return Err(AppError::bad_input(
                format!("input.values.{i}.period"),
                format!(
                    "{} is not a period of the model's timeline ({} … {}, {})",
                    input.period, model.start_period, model.end_period, model.period_granularity
                ),
            ));
        }
        if !seen.insert((metric.id, input.period)) {
            return Err(AppError::bad_input(
                format!("input.values.{i}"),
                format!("{} {} appears twice", input.metric_key, input.period),
            ));
        }
        touched.keys.insert(metric.key.as_str());
        touched.periods.insert(input.period);
        match input.value {
            Some(v) => {
                store
                    .values
                    .push(check_stored(v, &format!("input.values.{i}.value"))?);
                store.metric_ids.push(metric.id);
                store.periods.push(input.period);
            }
            None => {
                remove.metric_ids.push(metric.id);
                remove.periods.push(input.period);
            }
        }
    }
    Ok((store, remove, touched))
}

/// Store many values of one scenario at once (ANALYST+; not when locked): validated whole
/// first, then upserts and deletes of [`CHUNK`] rows, in one transaction with one audit event.
#[tracing::instrument(skip_all, fields(scenario_id = %scenario_id))]
pub async fn upsert(
    core: &Core,
    caller: &Caller,
    scenario_id: Uuid,
    values: Vec<ValueInput>,
) -> AppResult<UpsertOutcome> {
    if values.len() > MAX_VALUES {
        return Err(AppError::bad_input(
            "input.values",
            format!("at most {MAX_VALUES} values per call"),
        ));
    }
    core.transaction(async move |conn| {
        let LockedScenario { scenario, model, .. } = lock_scenario(conn, caller, scenario_id, OrgRole::Analyst).await?;
        ensure_unlocked(&scenario)?;
        let model_metrics: Vec<MetricRow> =
            metrics::table.filter(metrics::model_id.eq(model.id)).select(MetricRow::as_select()).load(conn).await?;
        let (store, remove, touched) = check(values, &model, &model_metrics)?;

        let mut upserted = 0;
        for ((metric_ids, periods), values) in
            store.metric_ids.chunks(CHUNK).zip(store.periods.chunks(CHUNK)).zip(store.values.chunks(CHUNK))
        {
            // One array per column: 4 binds whatever the size, and one prepared statement.
            upserted += diesel::sql_query(
                "INSERT INTO metric_values (scenario_id, organization_id, metric_id, period, value)
                 SELECT $1, $5, * FROM unnest($2::uuid[], $3::date[], $4::numeric[])
                 ON CONFLICT (scenario_id, metric_id, period) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind::<SqlUuid, _>(scenario_id)
            .bind::<Array<SqlUuid>, _>(metric_ids)
            .bind::<Array<Date>, _>(periods)
            .bind::<Array<Numeric>, _>(values)
            // Named, not left to the trigger: one per row would cost more than the upsert.
            .bind::<SqlUuid, _>(model.organization_id)
            .execute(conn)
            .await?;
        }
        drop(store);
        let mut removed = 0;
        for (metric_ids, periods) in remove.metric_ids.chunks(CHUNK).zip(remove.periods.chunks(CHUNK)) {
            removed += diesel::sql_query(
                "DELETE FROM metric_values WHERE scenario_id = $1
                   AND (metric_id, period) IN (SELECT * FROM unnest($2::uuid[], $3::date[]))",
            )
            .bind::<SqlUuid, _>(scenario_id)
            .bind::<Array<SqlUuid>, _>(metric_ids)
            .bind::<Array<Date>, _>(periods)
            .execute(conn)
            .await?;
        }
        drop(remove);
        // A summary, not the values: the event stays small whatever the call's size.
        let Touched { keys, periods } = touched;
        let summary = json!({
            "upserted": upserted,
            "removed": removed,
            "metrics": keys,
            "periods": {"from": periods.iter().next(), "to": periods.iter().next_back(), "count": periods.len()},
        });
        Trail::of(caller, model.organization_id).acted(conn, "metric_values.upsert", &scenario, None, summary).await?;
        Ok(UpsertOutcome {
            scenario,
            upserted: i32::try_from(upserted).unwrap_or(i32::MAX),
            removed: i32::try_from(removed).unwrap_or(i32::MAX),
        })
    })
    .await
}
