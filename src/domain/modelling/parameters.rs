//! Parameters (configurable inputs such as a growth rate) and their per-scenario overrides.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    enums::MetricUnit,
    loaders::{ParameterValuesOfScenario, ParametersOfModel},
    models::lock_model,
    numbers::check_stored,
    scenarios::{
        LockedScenario, ScenarioRow, chain_of, ensure_unlocked, lock_scenario, scenarios_of_model,
    },
};
use crate::{
    db::schema::{metrics, parameter_values, parameters},
    domain::names::validate_name,
    domain::{
        Core,
        audit::{Audited, Trail},
        auth::Caller,
        loader::{LoadError, RequestLoader},
        organizations::OrgRole,
    },
    error::{AppError, AppResult},
};

/// Names formulas use for functions: no metric or parameter may be called so.
pub const RESERVED_KEYS: &[&str] = &["min", "max", "abs", "sum", "if"];

/// Check a metric or parameter key: a lowercase identifier (`revenue`, `growth_rate`).
pub fn validate_key(raw: &str, field: &str) -> AppResult<String> {
    let key = raw.trim();
    let mut chars = key.chars();
    let valid = key.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(AppError::bad_input(
            field,
            "a key is a lowercase identifier: letters, digits and _, not starting with a digit",
        ));
    }
    if RESERVED_KEYS.contains(&key) {
        return Err(AppError::bad_input(
            field,
            format!("`{key}` is the name of a formula function"),
        ));
    }
    Ok(key.to_owned())
}

/// A parameter of a model.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = parameters, check_for_backend(diesel::pg::Pg))]
pub struct ParameterRow {
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
    /// Value when no scenario in the chain overrides it.
    pub default_value: Decimal,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Audited for ParameterRow {
    const ENTITY: &'static str = "Parameter";
    const NOUN: &'static str = "parameter";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({
            "modelId": self.model_id,
            "key": self.key,
            "name": self.name,
            "unit": self.unit.as_str(),
            "defaultValue": self.default_value.to_string(),
        })
    }
}

/// A scenario's override of a parameter.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = parameter_values, check_for_backend(diesel::pg::Pg))]
pub struct ParameterValueRow {
    /// The scenario.
    pub scenario_id: Uuid,
    /// The parameter.
    pub parameter_id: Uuid,
    /// The value.
    pub value: Decimal,
}

/// The value a scenario sees for a parameter.
#[derive(Debug, Clone)]
pub struct EffectiveParameter {
    /// The parameter.
    pub parameter: ParameterRow,
    /// Its value in the scenario.
    pub value: Decimal,
    /// The scenario whose override applies, when it is not the scenario itself.
    pub inherited_from: Option<Uuid>,
    /// Whether no scenario in the chain overrides it.
    pub is_default: bool,
}

/// Resolve parameters for a scenario: its override, else its base chain's, else the default.
pub fn effective(
    scenario_id: Uuid,
    parameters: &[ParameterRow],
    scenarios: &HashMap<Uuid, ScenarioRow>,
    overrides: &HashMap<Uuid, Vec<ParameterValueRow>>,
) -> Vec<EffectiveParameter> {
    let chain = chain_of(scenario_id, scenarios);
    parameters
        .iter()
        .map(|p| {
            let found = chain.iter().find_map(|s| {
                overrides
                    .get(s)
                    .and_then(|vals| vals.iter().find(|v| v.parameter_id == p.id))
                    .map(|v| (*s, v.value))
            });
            match found {
                Some((from, value)) => EffectiveParameter {
                    parameter: p.clone(),
                    value,
                    inherited_from: (from != scenario_id).then_some(from),
                    is_default: false,
                },
                None => EffectiveParameter {
                    parameter: p.clone(),
                    value: p.default_value,
                    inherited_from: None,
                    is_default: true,
                },
            }
        })
        .collect()
}

/// The overrides of every scenario of `chain`, by scenario, through the request's loader.
pub(crate) async fn overrides_of(
    loader: &RequestLoader,
    chain: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ParameterValueRow>>, LoadError> {
    Ok(loader
        .load_many(chain.iter().map(|id| ParameterValuesOfScenario(*id)))
        .await?
        .into_iter()
        .map(|(k, v)| (k.0, v))
        .collect())
}

/// Every parameter of `scenario`'s model as the scenario sees it ([`effective`]), read through
/// the request's loader: its model's scenarios, parameters, and the overrides of its chain.
#[tracing::instrument(skip_all)]
pub async fn effective_values(
    loader: &RequestLoader,
    scenario: &ScenarioRow,
) -> Result<Vec<EffectiveParameter>, LoadError> {
    let scenarios = scenarios_of_model(loader, scenario.model_id).await?;
    let chain = chain_of(scenario.id, &scenarios);
    let parameters = loader
        .load_one(ParametersOfModel(scenario.model_id))
        .await?
        .unwrap_or_default();
    let overrides = overrides_of(loader, &chain).await?;
    Ok(effective(scenario.id, &parameters, &scenarios, &overrides))
}

#[derive(Insertable)]
#[diesel(table_name = parameters)]
struct InsertParameter<'a> {
    model_id: Uuid,
    key: &'a str,
    name: &'a str,
    unit: MetricUnit,
    default_value: Decimal,
}

/// A new parameter.
#[derive(Debug, Clone)]
pub struct NewParameter {
    /// Identifier.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: MetricUnit,
    /// Default value.
    pub default_value: Decimal,
}

/// Refuse a key a metric of the model already uses: formulas could not tell them apart.
pub(crate) async fn ensure_key_free(
    conn: &mut AsyncPgConnection,
    model_id: Uuid,
    key: &str,
    field: &str,
) -> AppResult<()> {
    let metric: i64 = metrics::table
        .filter(metrics::model_id.eq(model_id))
        .filter(metrics::key.eq(key))
        .count()
        .get_result(conn)
        .await?;
    let parameter: i64 = parameters::table
        .filter(parameters::model_id.eq(model_id))
        .filter(parameters::key.eq(key))
        .count()
        .get_result(conn)
        .await?;
    if metric + parameter > 0 {
        return Err(AppError::Conflict(format!(
            "the key `{key}` is already used in this model ({field})"
        )));
    }
    Ok(())
}

/// Define a parameter of a model (ANALYST+).
#[tracing::instrument(skip_all, fields(model_id = %model_id))]
pub async fn define(
    core: &Core,
    caller: &Caller,
    model_id: Uuid,
    input: NewParameter,
) -> AppResult<ParameterRow> {
    let key = validate_key(&input.key, "input.key")?;
    let name = validate_name(&input.name, "input.name")?;
    let default_value = check_stored(input.default_value, "input.defaultValue")?;
    core.transaction(async |conn| {
        let model = lock_model(conn, caller, model_id, OrgRole::Analyst).await?;
        ensure_key_free(conn, model_id, &key, "input.key").await?;
        let row: ParameterRow = diesel::insert_into(parameters::table)
            .values(InsertParameter {
                model_id,
                key: &key,
                name: &name,
                unit: input.unit,
                default_value,
            })
            .returning(ParameterRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .created(conn, "parameter.define", &row)
            .await?;
        Ok(row)
    })
    .await
}

/// Set (or with `None` remove) a scenario's override of a parameter (ANALYST+; not when locked).
/// Returns the parameter as the scenario now sees it.
#[tracing::instrument(skip_all, fields(scenario_id = %scenario_id))]
pub async fn set_value(
    core: &Core,
    caller: &Caller,
    scenario_id: Uuid,
    parameter_key: &str,
    value: Option<Decimal>,
) -> AppResult<EffectiveParameter> {
    let value = value.map(|v| check_stored(v, "input.value")).transpose()?;
    core.transaction(async |conn| {
        let LockedScenario {
            scenario,
            all,
            model,
        } = lock_scenario(conn, caller, scenario_id, OrgRole::Analyst).await?;
        ensure_unlocked(&scenario)?;
        let all_parameters: Vec<ParameterRow> = parameters::table
            .filter(parameters::model_id.eq(model.id))
            .select(ParameterRow::as_select())
            .load(conn)
            .await?;
        let parameter = all_parameters
            .iter()
            .find(|p| p.key == parameter_key.trim())
            .cloned()
            .ok_or_else(|| {
                AppError::bad_input(
                    "input.parameterKey",
                    format!("the model has no parameter `{}`", parameter_key.trim()),
                )
            })?;
        let previous: Option<Decimal> = parameter_values::table
            .find((scenario_id, parameter.id))
            .select(parameter_values::value)
            .first(conn)
            .await
            .optional()?;
        match value {
            Some(v) => {
                diesel::insert_into(parameter_values::table)
                    .values((
                        parameter_values::scenario_id.eq(scenario_id),
                        parameter_values::parameter_id.eq(parameter.id),
                        parameter_values::value.eq(v),
                    ))
                    .on_conflict((
                        parameter_values::scenario_id,
                        parameter_values::parameter_id,
                    ))
                    .do_update()
                    .set(parameter_values::value.eq(v))
                    .execute(conn)
                    .await?;
            }
            None => {
                diesel::delete(parameter_values::table.find((scenario_id, parameter.id)))
                    .execute(conn)
                    .await?;
            }
        }
        let setting = |value: Option<Decimal>| {
            json!({"parameter": parameter.key, "value": value.map(|v| v.to_string())})
        };
        Trail::of(caller, model.organization_id)
            .acted(
                conn,
                "parameter_value.set",
                &scenario,
                Some(setting(previous)),
                setting(value),
            )
            .await?;
        // The effective value after the change, through the chain (read in this transaction).
        let chain = chain_of(scenario_id, &all);
        let rows: Vec<ParameterValueRow> = parameter_values::table
            .filter(parameter_values::scenario_id.eq_any(&chain))
            .filter(parameter_values::parameter_id.eq(parameter.id))
            .select(ParameterValueRow::as_select())
            .load(conn)
            .await?;
        let mut overrides: HashMap<Uuid, Vec<ParameterValueRow>> = HashMap::new();
        for row in rows {
            overrides.entry(row.scenario_id).or_default().push(row);
        }
        let mut resolved = effective(
            scenario_id,
            std::slice::from_ref(&parameter),
            &all,
            &overrides,
        );
        resolved.pop().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("parameter resolution returned nothing"))
        })
    })
    .await
}
