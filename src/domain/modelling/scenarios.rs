//! Scenarios: a model's cases. A scenario inherits every value and parameter it does not
//! override from its base scenario (same model, no cycles). A locked scenario refuses edits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{enums::ScenarioKind, loaders::ScenariosOfModel, models::lock_model};
use crate::{
    db::schema::{metric_values, parameter_values, scenarios},
    domain::names::validate_name,
    domain::{
        Core,
        audit::{Audited, Trail, Versioned},
        auth::Caller,
        loader::{LoadError, RequestLoader},
        organizations::OrgRole,
    },
    error::{AppError, AppResult},
};

/// A live scenario.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scenarios, check_for_backend(diesel::pg::Pg))]
pub struct ScenarioRow {
    /// Primary key.
    pub id: Uuid,
    /// The model.
    pub model_id: Uuid,
    /// Unique (case-insensitively) in the model.
    pub name: String,
    /// What it represents.
    pub kind: ScenarioKind,
    /// Free text.
    pub description: Option<String>,
    /// Where it inherits from.
    pub base_scenario_id: Option<Uuid>,
    /// Locked scenarios refuse edits.
    pub is_locked: bool,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Optimistic-concurrency version.
    pub version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Audited for ScenarioRow {
    const ENTITY: &'static str = "Scenario";
    const NOUN: &'static str = "scenario";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "description": self.description,
            "baseScenarioId": self.base_scenario_id,
            "isLocked": self.is_locked,
        })
    }
}

impl Versioned for ScenarioRow {
    fn version(&self) -> i32 {
        self.version
    }
}

/// The chain of a scenario: itself, its base, its base's base, … (nearest first).
pub fn chain_of(id: Uuid, by_id: &HashMap<Uuid, ScenarioRow>) -> Vec<Uuid> {
    let mut chain = vec![id];
    let mut current = by_id.get(&id).and_then(|s| s.base_scenario_id);
    while let Some(next) = current {
        if chain.contains(&next) {
            break; // cannot happen (cycles are refused); never loop forever on bad data
        }
        chain.push(next);
        current = by_id.get(&next).and_then(|s| s.base_scenario_id);
    }
    chain
}

/// Every live scenario of a model by id, through the request's loader: what [`chain_of`]
/// resolves a scenario's inheritance in.
pub(crate) async fn scenarios_of_model(
    loader: &RequestLoader,
    model_id: Uuid,
) -> Result<HashMap<Uuid, ScenarioRow>, LoadError> {
    Ok(loader
        .load_one(ScenariosOfModel(model_id))
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

async fn model_scenarios(
    conn: &mut AsyncPgConnection,
    model_id: Uuid,
) -> AppResult<HashMap<Uuid, ScenarioRow>> {
    let rows: Vec<ScenarioRow> = scenarios::table
        .filter(scenarios::model_id.eq(model_id))
        .filter(scenarios::deleted_at.is_null())
        .select(ScenarioRow::as_select())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|s| (s.id, s)).collect())
}

/// Find a live scenario and lock its model (every scenario edit of a model serialises on the
/// model row, which keeps base chains acyclic under concurrent updates); checks the caller's role.
pub(crate) async fn lock_scenario(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    min: OrgRole,
) -> AppResult<LockedScenario> {
    let model_id: Uuid = scenarios::table
        .find(id)
        .filter(scenarios::deleted_at.is_null())
        .select(scenarios::model_id)
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("scenario"))?;
    let model = lock_model(conn, caller, model_id, min)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("scenario"),
            other => other,
        })?;
    let all = model_scenarios(conn, model_id).await?;
    let scenario = all
        .get(&id)
        .cloned()
        .ok_or(AppError::NotFound("scenario"))?;
    Ok(LockedScenario {
        scenario,
        all,
        model,
    })
}

/// A scenario whose model is locked for the transaction, with its model's scenarios.
pub(crate) struct LockedScenario {
    /// The scenario.
    pub scenario: ScenarioRow,
    /// Every live scenario of the model, by id.
    pub all: HashMap<Uuid, ScenarioRow>,
    /// The model.
    pub model: super::models::ModelRow,
}

/// Refuse edits of a locked scenario.
pub(crate) fn ensure_unlocked(scenario: &ScenarioRow) -> AppResult<()> {
    if scenario.is_locked {
        return Err(AppError::Conflict(format!(
            "scenario \"{}\" is locked: unlock it first",
            scenario.name
        )));
    }
    Ok(())
}

fn check_base(
    base: Uuid,
    own: Option<Uuid>,
    all: &HashMap<Uuid, ScenarioRow>,
    field: &str,
) -> AppResult<()> {
    if !all.contains_key(&base) {
        return Err(AppError::bad_input(
            field,
            "the base scenario must be a scenario of the same model",
        ));
    }
    if let Some(own) = own
        && chain_of(base, all).contains(&own)
    {
        return Err(AppError::bad_input(
            field,
            "this base would make the scenario inherit from itself",
        ));
    }
    Ok(())
}

#[derive(Insertable)]
#[diesel(table_name = scenarios)]
struct InsertScenario<'a> {
    model_id: Uuid,
    name: &'a str,
    kind: ScenarioKind,
    description: Option<&'a str>,
    base_scenario_id: Option<Uuid>,
    created_by: Option<Uuid>,
}

/// A new scenario.
#[derive(Debug, Clone)]
pub struct NewScenario {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ScenarioKind,
    /// Description.
    pub description: Option<String>,
    /// Base scenario (same model).
    pub base_scenario_id: Option<Uuid>,
}

/// Create a scenario in a model (ANALYST+).
#[tracing::instrument(skip_all, fields(model_id = %model_id))]
pub async fn create(
    core: &Core,
    caller: &Caller,
    model_id: Uuid,
    input: NewScenario,
) -> AppResult<ScenarioRow> {
    let name = validate_name(&input.name, "input.name")?;
    crate::domain::limits::description(input.description.as_deref(), "input.description")?;
    core.transaction(async |conn| {
        let model = lock_model(conn, caller, model_id, OrgRole::Analyst).await?;
        if let Some(base) = input.base_scenario_id {
            check_base(
                base,
                None,
                &model_scenarios(conn, model_id).await?,
                "input.baseScenarioId",
            )?;
        }
        let row: ScenarioRow = diesel::insert_into(scenarios::table)
            .values(InsertScenario {
                model_id,
                name: &name,
                kind: input.kind,
                description: input.description.as_deref(),
                base_scenario_id: input.base_scenario_id,
                created_by: caller.viewer.user_id(),
            })
            .returning(ScenarioRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .created(conn, "scenario.create", &row)
            .await?;
        Ok(row)
    })
    .await
}

/// Copy a scenario with its parameter overrides and stored values (one `INSERT … SELECT` each,
/// not row by row). The copy keeps the source's base scenario and is unlocked.
#[tracing::instrument(skip_all, fields(source_id = %source_id))]
pub async fn clone(
    core: &Core,
    caller: &Caller,
    source_id: Uuid,
    name: &str,
    kind: ScenarioKind,
) -> AppResult<ScenarioRow> {
    let name = validate_name(name, "input.name")?;
    core.transaction(async |conn| {
        let LockedScenario {
            scenario: source,
            model,
            ..
        } = lock_scenario(conn, caller, source_id, OrgRole::Analyst).await?;
        let organization_id = model.organization_id;
        let row: ScenarioRow = diesel::insert_into(scenarios::table)
            .values(InsertScenario {
                model_id: source.model_id,
                name: &name,
                kind,
                description: source.description.as_deref(),
                base_scenario_id: source.base_scenario_id,
                created_by: caller.viewer.user_id(),
            })
            .returning(ScenarioRow::as_returning())
            .get_result(conn)
            .await?;
        let parameters = diesel::insert_into(parameter_values::table)
            .values(
                parameter_values::table
                    .filter(parameter_values::scenario_id.eq(source_id))
                    .select((
                        diesel::dsl::sql::<diesel::sql_types::Uuid>("")
                            .bind::<diesel::sql_types::Uuid, _>(row.id),
                        parameter_values::parameter_id,
                        parameter_values::value,
                        parameter_values::organization_id,
                    )),
            )
            .into_columns((
                parameter_values::scenario_id,
                parameter_values::parameter_id,
                parameter_values::value,
                parameter_values::organization_id,
            ))
            .execute(conn)
            .await?;
        let values = diesel::insert_into(metric_values::table)
            .values(
                metric_values::table
                    .filter(metric_values::scenario_id.eq(source_id))
                    .select((
                        diesel::dsl::sql::<diesel::sql_types::Uuid>("")
                            .bind::<diesel::sql_types::Uuid, _>(row.id),
                        metric_values::metric_id,
                        metric_values::period,
                        metric_values::value,
                        metric_values::organization_id,
                    )),
            )
            .into_columns((
                metric_values::scenario_id,
                metric_values::metric_id,
                metric_values::period,
                metric_values::value,
                metric_values::organization_id,
            ))
            .execute(conn)
            .await?;
        let mut new_values = row.audit_values();
        new_values["clonedFrom"] = json!(source_id);
        new_values["parameterValuesCopied"] = json!(parameters);
        new_values["metricValuesCopied"] = json!(values);
        Trail::of(caller, organization_id)
            .acted(conn, "scenario.clone", &row, None, new_values)
            .await?;
        Ok(row)
    })
    .await
}

/// Changes to a scenario; `None` leaves a field as it is. `base_scenario_id: Some(None)` removes
/// the base.
#[derive(Debug, Clone, Default)]
pub struct ScenarioChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New kind.
    pub kind: Option<ScenarioKind>,
    /// New base (or none).
    pub base_scenario_id: Option<Option<Uuid>>,
}

/// Update a scenario at the version the client read (ANALYST+; locked: `CONFLICT`).
#[tracing::instrument(skip_all, fields(scenario = %id))]
pub async fn update(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    version: i32,
    changes: ScenarioChanges,
) -> AppResult<ScenarioRow> {
    let name = changes
        .name
        .as_deref()
        .map(|n| validate_name(n, "input.name"))
        .transpose()?;
    crate::domain::limits::description(changes.description.as_deref(), "input.description")?;
    core.transaction(async |conn| {
        let LockedScenario {
            scenario: current,
            all,
            model,
        } = lock_scenario(conn, caller, id, OrgRole::Analyst).await?;
        ensure_unlocked(&current)?;
        current.check_version(version)?;
        let base = changes.base_scenario_id.unwrap_or(current.base_scenario_id);
        if let Some(base) = base
            && Some(base) != current.base_scenario_id
        {
            check_base(base, Some(id), &all, "input.baseScenarioId")?;
        }
        let updated: ScenarioRow = diesel::update(scenarios::table.find(id))
            .set((
                scenarios::name.eq(name.as_deref().unwrap_or(&current.name)),
                scenarios::description.eq(changes
                    .description
                    .as_deref()
                    .or(current.description.as_deref())),
                scenarios::kind.eq(changes.kind.unwrap_or(current.kind)),
                scenarios::base_scenario_id.eq(base),
                scenarios::version.eq(scenarios::version + 1),
            ))
            .returning(ScenarioRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .updated(conn, "scenario.update", &current, &updated)
            .await?;
        Ok(updated)
    })
    .await
}

/// Lock or unlock a scenario (ADMIN+).
#[tracing::instrument(skip_all, fields(scenario = %id))]
pub async fn set_locked(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    locked: bool,
) -> AppResult<ScenarioRow> {
    core.transaction(async |conn| {
        let LockedScenario {
            scenario: current,
            model,
            ..
        } = lock_scenario(conn, caller, id, OrgRole::Admin).await?;
        if current.is_locked == locked {
            return Ok(current);
        }
        let updated: ScenarioRow = diesel::update(scenarios::table.find(id))
            .set((
                scenarios::is_locked.eq(locked),
                scenarios::version.eq(scenarios::version + 1),
            ))
            .returning(ScenarioRow::as_returning())
            .get_result(conn)
            .await?;
        let action = if locked {
            "scenario.lock"
        } else {
            "scenario.unlock"
        };
        Trail::of(caller, model.organization_id)
            .updated(conn, action, &current, &updated)
            .await?;
        Ok(updated)
    })
    .await
}

/// Delete a scenario (ANALYST+): refused while locked or while another scenario inherits from it.
#[tracing::instrument(skip_all, fields(scenario = %id))]
pub async fn delete(core: &Core, caller: &Caller, id: Uuid) -> AppResult<bool> {
    core.transaction(async |conn| {
        let LockedScenario {
            scenario: current,
            all,
            model,
        } = lock_scenario(conn, caller, id, OrgRole::Analyst).await?;
        ensure_unlocked(&current)?;
        if let Some(child) = all.values().find(|s| s.base_scenario_id == Some(id)) {
            return Err(AppError::Conflict(format!(
                "scenario \"{}\" is the base of \"{}\": change that scenario's base first",
                current.name, child.name
            )));
        }
        diesel::update(scenarios::table.find(id))
            .set(scenarios::deleted_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .deleted(conn, "scenario.delete", &current)
            .await?;
        Ok(true)
    })
    .await
}
