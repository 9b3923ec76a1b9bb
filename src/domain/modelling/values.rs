//! Stored metric values: the bulk, all-or-nothing upsert.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::{
    prelude::*,
    sql_types::{Array, Date, Uuid as SqlUuid},
    upsert::excluded,
};
use diesel_async::{AsyncConnection, RunQueryDsl};
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
    domain::{
        Core,
        audit::{AuditEntry, record},
        auth::Caller,
        organizations::OrgRole,
    },
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

/// Store many values of one scenario at once (ANALYST+; not when locked): validated whole
/// first, then one multi-row upsert and one delete, in one transaction with one audit event.
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
    let mut conn = core.db.conn().await?;
    conn.transaction(async |conn| {
        let LockedScenario { scenario, model, .. } = lock_scenario(conn, caller, scenario_id, OrgRole::Analyst).await?;
        ensure_unlocked(&scenario)?;
        let model_metrics: Vec<MetricRow> =
            metrics::table.filter(metrics::model_id.eq(model.id)).select(MetricRow::as_select()).load(conn).await?;
        let by_key: HashMap<&str, &MetricRow> = model_metrics.iter().map(|m| (m.key.as_str(), m)).collect();

        let mut seen = HashSet::new();
        let mut to_store = Vec::new();
        let (mut remove_metrics, mut remove_periods) = (Vec::new(), Vec::new());
        let mut keys = BTreeSet::new();
        for (i, input) in values.iter().enumerate() {
            let metric = by_key
                .get(input.metric_key.as_str())
                .ok_or_else(|| AppError::bad_input(format!("input.values.{i}.metricKey"), format!("the model has no metric `{}`", input.metric_key)))?;
            if !is_boundary(input.period, model.period_granularity) || input.period < model.start_period || input.period > model.end_period {
                return Err(AppError::bad_input(
                    format!("input.values.{i}.period"),
                    format!("{} is not a period of the model's timeline ({} … {}, {})", input.period, model.start_period, model.end_period, model.period_granularity),
                ));
            }
            if !seen.insert((metric.id, input.period)) {
                return Err(AppError::bad_input(format!("input.values.{i}"), format!("{} {} appears twice", input.metric_key, input.period)));
            }
            keys.insert(metric.key.clone());
            match input.value {
                Some(v) => to_store.push(MetricValueRow {
                    scenario_id,
                    metric_id: metric.id,
                    period: input.period,
                    value: check_stored(v, &format!("input.values.{i}.value"))?,
                }),
                None => {
                    remove_metrics.push(metric.id);
                    remove_periods.push(input.period);
                }
            }
        }

        let mut upserted = 0;
        if !to_store.is_empty() {
            // One statement for all rows (4 binds each: 10 000 rows stay under PostgreSQL's 65 535).
            upserted = diesel::insert_into(metric_values::table)
                .values(&to_store)
                .on_conflict((metric_values::scenario_id, metric_values::metric_id, metric_values::period))
                .do_update()
                .set(metric_values::value.eq(excluded(metric_values::value)))
                .execute(conn)
                .await?;
        }
        let mut removed = 0;
        if !remove_metrics.is_empty() {
            removed = diesel::sql_query(
                "DELETE FROM metric_values WHERE scenario_id = $1
                   AND (metric_id, period) IN (SELECT * FROM unnest($2::uuid[], $3::date[]))",
            )
            .bind::<SqlUuid, _>(scenario_id)
            .bind::<Array<SqlUuid>, _>(&remove_metrics)
            .bind::<Array<Date>, _>(&remove_periods)
            .execute(conn)
            .await?;
        }
        let periods: BTreeSet<NaiveDate> = values.iter().map(|v| v.period).collect();
        record(
            conn,
            caller,
            AuditEntry::new(Some(model.organization_id), "metric_values.upsert", "Scenario", Some(scenario_id)).with_new(json!({
                "upserted": upserted,
                "removed": removed,
                "metrics": keys,
                "periods": {"from": periods.iter().next(), "to": periods.iter().next_back(), "count": periods.len()},
            })),
        )
        .await?;
        Ok(UpsertOutcome {
            scenario,
            upserted: i32::try_from(upserted).unwrap_or(i32::MAX),
            removed: i32::try_from(removed).unwrap_or(i32::MAX),
        })
    })
    .await
}
