//! Evaluating a scenario: stored values resolved through its base chain, parameters resolved the
//! same way, derived metrics computed by the formula engine over the whole timeline at once.

use std::collections::HashMap;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    evaluation::EvalBudget,
    formula::{self, MetricDef, ModelInput},
    metrics::{MetricRow, parse_stored},
    models::ModelRow,
    parameters::{ParameterRow, ParameterValueRow, effective},
    scenarios::{ScenarioRow, chain_of},
    values::MetricValueRow,
};
use crate::error::{AppError, AppResult};

/// Everything the evaluation of scenarios of one model reads (loaded by DataLoaders), owned so
/// that it can move to a blocking thread.
pub struct ModelData {
    /// The model.
    pub model: ModelRow,
    /// Its metrics.
    pub metrics: Vec<MetricRow>,
    /// Its parameters.
    pub parameters: Vec<ParameterRow>,
    /// Its scenarios, by id.
    pub scenarios: HashMap<Uuid, ScenarioRow>,
    /// Parameter overrides of (at least) every scenario in the chain, by scenario.
    pub overrides: HashMap<Uuid, Vec<ParameterValueRow>>,
    /// Stored values of (at least) every scenario in the chain, by scenario.
    pub values: HashMap<Uuid, Vec<MetricValueRow>>,
}

/// A scenario evaluated over its model's whole timeline.
#[derive(Debug)]
pub struct ScenarioGrid {
    /// The model.
    pub model: ModelRow,
    /// Its metrics, in display order.
    pub metrics: Vec<MetricRow>,
    /// Values by metric key, one per period of the timeline (full precision; the API rounds on
    /// output).
    pub values: HashMap<String, Vec<Option<Decimal>>>,
}

/// Evaluate a scenario, after charging its cost to `budget`: every period costs 1 per INPUT
/// metric and the [`eval_weight`](formula::eval_weight) of its formula per DERIVED one. Returns
/// the grid and the cost charged. Blocking: call it off the async workers.
pub(crate) fn evaluate_scenario(
    scenario_id: Uuid,
    data: ModelData,
    budget: &EvalBudget,
) -> AppResult<(ScenarioGrid, u64)> {
    let periods = data.model.periods();
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
    // Priced before anything is computed: a refused evaluation costs its parse, nothing more.
    let per_period = defs
        .iter()
        .map(|d| d.formula.as_ref().map_or(1, formula::eval_weight))
        .fold(0u64, u64::saturating_add);
    let cost = per_period.saturating_mul(periods.len() as u64);
    budget.charge(cost)?;

    let index: HashMap<chrono::NaiveDate, usize> =
        periods.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let key_of: HashMap<Uuid, &str> = data
        .metrics
        .iter()
        .map(|m| (m.id, m.key.as_str()))
        .collect();

    // Nearest scenario first: a value stored on the scenario wins over its base's, and so on.
    let mut stored: HashMap<String, Vec<Option<Decimal>>> = HashMap::new();
    for scenario in chain_of(scenario_id, &data.scenarios) {
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
    let parameters: HashMap<String, Decimal> = effective(
        scenario_id,
        &data.parameters,
        &data.scenarios,
        &data.overrides,
    )
    .into_iter()
    .map(|p| (p.parameter.key, p.value))
    .collect();
    let values = formula::evaluate(&ModelInput {
        period_count: periods.len(),
        metrics: &defs,
        parameters: &parameters,
        stored: &stored,
    })
    .map_err(|e| {
        AppError::internal(anyhow::anyhow!(
            "evaluation of a validated model failed: {e}"
        ))
    })?;
    Ok((
        ScenarioGrid {
            model: data.model,
            metrics: data.metrics,
            values,
        },
        cost,
    ))
}
