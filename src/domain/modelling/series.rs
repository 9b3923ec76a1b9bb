//! Evaluating a scenario: stored values resolved through its base chain, parameters resolved the
//! same way, derived metrics computed by the formula engine over the whole timeline at once; and
//! the read path over it, `series` and `compare`: what they load, evaluate and slice.

use std::{collections::HashMap, sync::Arc};

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    evaluation::{EvalBudget, EvalSession},
    formula::{self, MetricDef, ModelInput},
    loaders::{MetricValuesOfScenario, MetricsOfModel, ModelById, ParametersOfModel, ScenarioById},
    metrics::{MetricRow, parse_stored},
    models::ModelRow,
    parameters::{ParameterRow, ParameterValueRow, effective, overrides_of},
    scenarios::{ScenarioRow, chain_of, scenarios_of_model},
    selection::{Comparison, Series, SeriesRequest, compare_grids, select, series_of},
    values::MetricValueRow,
};
use crate::{
    domain::{
        Core,
        loader::{LoadError, RequestLoader},
    },
    error::{AppError, AppResult},
};

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

/// Everything the evaluation of `scenario` reads, through the request's loader: its model, the
/// model's scenarios, metrics and parameters, and the overrides and stored values of its chain.
/// Batched with the request's other loads, so the series of many scenarios take a constant
/// number of statements.
#[tracing::instrument(skip_all)]
pub async fn load_model_data(
    loader: &RequestLoader,
    scenario: &ScenarioRow,
) -> Result<ModelData, LoadError> {
    let model = loader
        .load_one(ModelById(scenario.model_id))
        .await?
        .ok_or(AppError::NotFound("model"))?;
    // One level: the model's scenarios and its definitions (metrics, with the parameters
    // primed by the same statement), batched together.
    let (scenarios, metrics) = futures_util::try_join!(
        scenarios_of_model(loader, model.id),
        loader.load_one(MetricsOfModel(model.id)),
    )?;
    let metrics = metrics.unwrap_or_default();
    let parameters = loader
        .load_one(ParametersOfModel(model.id))
        .await?
        .unwrap_or_default();
    let chain = chain_of(scenario.id, &scenarios);
    // The stored values first: their statement brings the chain's parameter overrides along.
    let values = loader
        .load_many(chain.iter().map(|id| MetricValuesOfScenario(*id)))
        .await?
        .into_iter()
        .map(|(k, v)| (k.0, v))
        .collect();
    let overrides = overrides_of(loader, &chain).await?;
    Ok(ModelData {
        model,
        metrics,
        parameters,
        scenarios,
        overrides,
        values,
    })
}

/// `scenario` evaluated over its model's whole timeline, once per `session` however many fields
/// ask for it (the grid is shared; each field slices it): loaded through `loader`, charged to
/// the session's budget and evaluated off the async workers ([`Core::evaluate`]).
#[tracing::instrument(skip_all)]
pub async fn grid(
    core: &Core,
    session: &EvalSession,
    loader: &RequestLoader,
    scenario: &ScenarioRow,
) -> Result<Arc<ScenarioGrid>, LoadError> {
    core.evaluate(session, scenario.id, || load_model_data(loader, scenario))
        .await
}

/// The series `request` selects of `scenario`.
#[tracing::instrument(skip_all)]
pub async fn series(
    core: &Core,
    session: &EvalSession,
    loader: &RequestLoader,
    scenario: &ScenarioRow,
    request: &SeriesRequest<'_>,
) -> Result<Vec<Series>, LoadError> {
    let grid = grid(core, session, loader, scenario).await?;
    let selection = select(&grid, request)?;
    Ok(series_of(&grid, selection))
}

/// The series `request` selects of `scenario` (the base) and of `other_id`, another scenario of
/// the same model (else `BAD_USER_INPUT` on `otherScenarioId`), compared period by period. Both
/// are evaluated concurrently, so their loads share batches.
#[tracing::instrument(skip_all, fields(other_id = %other_id))]
pub async fn compare(
    core: &Core,
    session: &EvalSession,
    loader: &RequestLoader,
    scenario: &ScenarioRow,
    other_id: Uuid,
    request: &SeriesRequest<'_>,
) -> Result<Vec<Comparison>, LoadError> {
    let other = loader
        .load_one(ScenarioById(other_id))
        .await?
        .filter(|o| o.model_id == scenario.model_id)
        .ok_or_else(|| {
            AppError::bad_input(
                "otherScenarioId",
                "compare with a scenario of the same model",
            )
        })?;
    let (base, other) = futures_util::try_join!(
        grid(core, session, loader, scenario),
        grid(core, session, loader, &other)
    )?;
    let selection = select(&base, request)?;
    Ok(compare_grids(&base, &other, selection))
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
