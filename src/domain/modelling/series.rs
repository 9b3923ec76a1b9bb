//! Evaluating a scenario: stored values resolved through its base chain, parameters resolved the
//! same way, derived metrics computed by the formula engine over the whole timeline at once.

use std::collections::HashMap;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    formula::{self, MetricDef, ModelInput},
    metrics::{MetricRow, parse_stored},
    models::ModelRow,
    parameters::{ParameterRow, ParameterValueRow, effective},
    scenarios::{ScenarioRow, chain_of},
    values::MetricValueRow,
};
use crate::error::{AppError, AppResult};

/// Everything the evaluation of scenarios of one model reads (loaded by DataLoaders).
pub struct ModelData<'a> {
    /// The model.
    pub model: &'a ModelRow,
    /// Its metrics.
    pub metrics: &'a [MetricRow],
    /// Its parameters.
    pub parameters: &'a [ParameterRow],
    /// Its scenarios, by id.
    pub scenarios: &'a HashMap<Uuid, ScenarioRow>,
    /// Parameter overrides of (at least) every scenario in the chain, by scenario.
    pub overrides: &'a HashMap<Uuid, Vec<ParameterValueRow>>,
    /// Stored values of (at least) every scenario in the chain, by scenario.
    pub values: &'a HashMap<Uuid, Vec<MetricValueRow>>,
}

/// Every metric's value for every period of the timeline, by metric key (full precision; the
/// API rounds on output).
pub fn evaluate_scenario(
    scenario_id: Uuid,
    data: &ModelData<'_>,
) -> AppResult<HashMap<String, Vec<Option<Decimal>>>> {
    let periods = data.model.periods();
    let index: HashMap<chrono::NaiveDate, usize> =
        periods.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let key_of: HashMap<Uuid, &str> = data
        .metrics
        .iter()
        .map(|m| (m.id, m.key.as_str()))
        .collect();

    // Nearest scenario first: a value stored on the scenario wins over its base's, and so on.
    let mut stored: HashMap<String, Vec<Option<Decimal>>> = HashMap::new();
    for scenario in chain_of(scenario_id, data.scenarios) {
        for row in data
            .values
            .get(&scenario)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let (Some(key), Some(&i)) = (key_of.get(&row.metric_id), index.get(&row.period)) else {
                continue; // a value off the timeline is missing, as the contract says
            };
            let series = stored
                .entry((*key).to_owned())
                .or_insert_with(|| vec![None; periods.len()]);
            if series[i].is_none() {
                series[i] = Some(row.value);
            }
        }
    }
    let parameters: HashMap<String, Decimal> =
        effective(scenario_id, data.parameters, data.scenarios, data.overrides)
            .into_iter()
            .map(|p| (p.parameter.key, p.value))
            .collect();
    let defs = data
        .metrics
        .iter()
        .map(|m| {
            Ok(MetricDef {
                key: m.key.clone(),
                formula: m.formula.as_deref().map(parse_stored).transpose()?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    formula::evaluate(&ModelInput {
        period_count: periods.len(),
        metrics: &defs,
        parameters: &parameters,
        stored: &stored,
    })
    .map_err(|e| {
        AppError::internal(anyhow::anyhow!(
            "evaluation of a validated model failed: {e}"
        ))
    })
}
