//! Metrics: INPUT series and DERIVED formulas. A formula is parsed and validated on save, its
//! dependencies are kept in `metric_dependencies`, and a dependency cycle is refused by name
//! unless it runs across periods in one direction of time.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    enums::{MetricKind, MetricUnit},
    formula::{self, Expr, FormulaLimits},
    models::{ModelRow, lock_model},
    parameters::{ensure_key_free, validate_key},
};
use crate::{
    db::schema::{metric_dependencies, metrics, parameters},
    domain::names::validate_name,
    domain::{
        Core,
        audit::{Audited, Trail, Versioned},
        auth::Caller,
        organizations::OrgRole,
    },
    error::{AppError, AppResult},
};

/// A metric of a model.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = metrics, check_for_backend(diesel::pg::Pg))]
pub struct MetricRow {
    /// Primary key.
    pub id: Uuid,
    /// The model.
    pub model_id: Uuid,
    /// Identifier used in formulas, unique in the model.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: MetricUnit,
    /// INPUT or DERIVED.
    pub kind: MetricKind,
    /// The formula of a DERIVED metric.
    pub formula: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Position in lists.
    pub display_order: i32,
    /// Optimistic-concurrency version.
    pub version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Audited for MetricRow {
    const ENTITY: &'static str = "Metric";
    const NOUN: &'static str = "metric";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({
            "key": self.key, "name": self.name, "unit": self.unit.as_str(), "kind": self.kind.as_str(),
            "formula": self.formula, "description": self.description, "displayOrder": self.display_order,
        })
    }
}

impl Versioned for MetricRow {
    fn version(&self) -> i32 {
        self.version
    }
}

/// A dependency edge: `metric_id`'s formula reads `depends_on_metric_id`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = metric_dependencies, check_for_backend(diesel::pg::Pg))]
pub struct DependencyRow {
    /// The metric with the formula.
    pub metric_id: Uuid,
    /// The metric it reads.
    pub depends_on_metric_id: Uuid,
}

/// Parse a stored formula (validated when saved).
pub fn parse_stored(formula: &str) -> AppResult<Expr> {
    formula::parse(formula).map_err(|e| {
        AppError::internal(anyhow::anyhow!(
            "stored formula does not parse: {}",
            e.message
        ))
    })
}

fn formula_error(err: &formula::FormulaError) -> AppError {
    AppError::bad_input(
        "input.formula",
        format!("{} (column {})", err.message, err.column()),
    )
}

/// Refuse a formula over the length limit before a transaction starts or a token is read: a
/// megabyte of formula costs one pass over its bytes.
fn check_formula_length(core: &Core, source: Option<&str>) -> AppResult<()> {
    match source {
        Some(source) => core
            .settings
            .formula_limits
            .check_length(source)
            .map_err(|e| formula_error(&e)),
        None => Ok(()),
    }
}

/// Parse `source` within the size limits and validate it as the formula of `own_key`, and check
/// that the model's dependency cycles, with it, are all allowed ([`formula::schedule`]: across
/// periods in one direction of time). Returns the metric ids it depends on.
async fn check_formula(
    conn: &mut AsyncPgConnection,
    limits: &FormulaLimits,
    model: &ModelRow,
    own_id: Option<Uuid>,
    own_key: &str,
    source: &str,
) -> AppResult<BTreeSet<Uuid>> {
    let expr = formula::parse_with(source, limits).map_err(|e| formula_error(&e))?;
    let all: Vec<MetricRow> = metrics::table
        .filter(metrics::model_id.eq(model.id))
        .select(MetricRow::as_select())
        .load(conn)
        .await?;
    let parameter_keys: Vec<String> = parameters::table
        .filter(parameters::model_id.eq(model.id))
        .select(parameters::key)
        .load(conn)
        .await?;
    let mut metric_keys: BTreeSet<String> = all.iter().map(|m| m.key.clone()).collect();
    metric_keys.insert(own_key.to_owned());
    formula::validate(&expr, own_key, &metric_keys, &parameter_keys[..])
        .map_err(|e| formula_error(&e))?;
    let depends = formula::metric_dependencies(&expr, own_key, &metric_keys);

    // The graph as it would be with this formula, offsets included: whether a cycle is allowed
    // depends on the periods it reads, which `metric_dependencies` does not keep, so every other
    // formula of the model is read again.
    let mut graph = formula::ReadGraph::new();
    for other in all.iter().filter(|m| Some(m.id) != own_id) {
        if let Some(source) = &other.formula {
            let other_expr = parse_stored(source)?;
            graph.insert(
                other.key.clone(),
                formula::metric_reads(&other_expr, &other.key, &metric_keys),
            );
        }
    }
    graph.insert(
        own_key.to_owned(),
        formula::metric_reads(&expr, own_key, &metric_keys),
    );
    if let Err(cycle) = formula::schedule(&graph) {
        return Err(AppError::bad_input(
            "input.formula",
            format!(
                "this formula creates a dependency cycle {cycle}. A metric may depend on itself \
                 only across periods in one direction of time: all earlier (such as `x[-1]`, \
                 computed first period to last) or all later (such as `x[1]`, computed last \
                 period to first)"
            ),
        ));
    }
    Ok(all
        .iter()
        .filter(|m| depends.contains(&m.key))
        .map(|m| m.id)
        .collect())
}

async fn replace_dependencies(
    conn: &mut AsyncPgConnection,
    metric_id: Uuid,
    depends: &BTreeSet<Uuid>,
) -> AppResult<()> {
    diesel::delete(metric_dependencies::table.filter(metric_dependencies::metric_id.eq(metric_id)))
        .execute(conn)
        .await?;
    let rows: Vec<DependencyRow> = depends
        .iter()
        .map(|d| DependencyRow {
            metric_id,
            depends_on_metric_id: *d,
        })
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(metric_dependencies::table)
            .values(&rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A new metric.
#[derive(Debug, Clone)]
pub struct NewMetric {
    /// Identifier.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: MetricUnit,
    /// INPUT or DERIVED.
    pub kind: MetricKind,
    /// Formula (DERIVED only, required there).
    pub formula: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Position in lists.
    pub display_order: Option<i32>,
}

#[derive(Insertable)]
#[diesel(table_name = metrics)]
struct InsertMetric<'a> {
    model_id: Uuid,
    key: &'a str,
    name: &'a str,
    unit: MetricUnit,
    kind: MetricKind,
    formula: Option<&'a str>,
    description: Option<&'a str>,
    display_order: i32,
}

fn formula_for_kind(kind: MetricKind, formula: Option<&str>) -> AppResult<Option<String>> {
    let formula = formula.map(str::trim).filter(|f| !f.is_empty());
    match (kind, formula) {
        (MetricKind::Derived, None) => Err(AppError::bad_input(
            "input.formula",
            "a DERIVED metric needs a formula",
        )),
        (MetricKind::Input, Some(_)) => Err(AppError::bad_input(
            "input.formula",
            "an INPUT metric has no formula",
        )),
        (_, f) => Ok(f.map(str::to_owned)),
    }
}

/// Define a metric (ANALYST+).
#[tracing::instrument(skip_all, fields(model_id = %model_id))]
pub async fn define(
    core: &Core,
    caller: &Caller,
    model_id: Uuid,
    input: NewMetric,
) -> AppResult<MetricRow> {
    let key = validate_key(&input.key, "input.key")?;
    let name = validate_name(&input.name, "input.name")?;
    crate::domain::limits::description(input.description.as_deref(), "input.description")?;
    let formula = formula_for_kind(input.kind, input.formula.as_deref())?;
    check_formula_length(core, formula.as_deref())?;
    let limits = core.settings.formula_limits;
    core.transaction(async |conn| {
        let model = lock_model(conn, caller, model_id, OrgRole::Analyst).await?;
        ensure_key_free(conn, model_id, &key, "input.key").await?;
        let depends = match &formula {
            Some(f) => check_formula(conn, &limits, &model, None, &key, f).await?,
            None => BTreeSet::new(),
        };
        let display_order = match input.display_order {
            Some(order) => order,
            None => metrics::table
                .filter(metrics::model_id.eq(model_id))
                .select(diesel::dsl::max(metrics::display_order))
                .first::<Option<i32>>(conn)
                .await?
                .map_or(0, |m| m.saturating_add(1)),
        };
        let row: MetricRow = diesel::insert_into(metrics::table)
            .values(InsertMetric {
                model_id,
                key: &key,
                name: &name,
                unit: input.unit,
                kind: input.kind,
                formula: formula.as_deref(),
                description: input.description.as_deref(),
                display_order,
            })
            .returning(MetricRow::as_returning())
            .get_result(conn)
            .await?;
        replace_dependencies(conn, row.id, &depends).await?;
        Trail::of(caller, model.organization_id)
            .created(conn, "metric.define", &row)
            .await?;
        Ok(row)
    })
    .await
}

/// Changes to a metric; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MetricChanges {
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

async fn lock_metric(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
) -> AppResult<(MetricRow, ModelRow)> {
    let model_id: Uuid = metrics::table
        .find(id)
        .select(metrics::model_id)
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("metric"))?;
    let model = lock_model(conn, caller, model_id, OrgRole::Analyst)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("metric"),
            other => other,
        })?;
    let metric = metrics::table
        .find(id)
        .select(MetricRow::as_select())
        .first(conn)
        .await?;
    Ok((metric, model))
}

/// Update a metric at the version the client read (ANALYST+).
#[tracing::instrument(skip_all, fields(metric = %id))]
pub async fn update(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    version: i32,
    changes: MetricChanges,
) -> AppResult<MetricRow> {
    let name = changes
        .name
        .as_deref()
        .map(|n| validate_name(n, "input.name"))
        .transpose()?;
    check_formula_length(core, changes.formula.as_deref().map(str::trim))?;
    let limits = core.settings.formula_limits;
    crate::domain::limits::description(changes.description.as_deref(), "input.description")?;
    core.transaction(async |conn| {
        let (current, model) = lock_metric(conn, caller, id).await?;
        current.check_version(version)?;
        let formula = match &changes.formula {
            Some(f) => formula_for_kind(current.kind, Some(f))?,
            None => current.formula.clone(),
        };
        if changes.formula.is_some()
            && let Some(f) = &formula
        {
            let depends = check_formula(conn, &limits, &model, Some(id), &current.key, f).await?;
            replace_dependencies(conn, id, &depends).await?;
        }
        let updated: MetricRow = diesel::update(metrics::table.find(id))
            .set((
                metrics::name.eq(name.as_deref().unwrap_or(&current.name)),
                metrics::unit.eq(changes.unit.unwrap_or(current.unit)),
                metrics::formula.eq(formula.as_deref()),
                metrics::description.eq(changes
                    .description
                    .as_deref()
                    .or(current.description.as_deref())),
                metrics::display_order.eq(changes.display_order.unwrap_or(current.display_order)),
                metrics::version.eq(metrics::version + 1),
            ))
            .returning(MetricRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .updated(conn, "metric.update", &current, &updated)
            .await?;
        Ok(updated)
    })
    .await
}

/// Delete a metric and its stored values (ANALYST+); refused while a formula reads it.
#[tracing::instrument(skip_all, fields(metric = %id))]
pub async fn delete(core: &Core, caller: &Caller, id: Uuid) -> AppResult<bool> {
    core.transaction(async |conn| {
        let (current, model) = lock_metric(conn, caller, id).await?;
        let users: Vec<String> = metric_dependencies::table
            .inner_join(metrics::table.on(metrics::id.eq(metric_dependencies::metric_id)))
            .filter(metric_dependencies::depends_on_metric_id.eq(id))
            .select(metrics::key)
            .order(metrics::key)
            .load(conn)
            .await?;
        if !users.is_empty() {
            return Err(AppError::Conflict(format!(
                "`{}` is used by the formulas of: {}",
                current.key,
                users.join(", ")
            )));
        }
        diesel::delete(metrics::table.find(id))
            .execute(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .deleted(conn, "metric.delete", &current)
            .await?;
        Ok(true)
    })
    .await
}
