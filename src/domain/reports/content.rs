//! What a report holds, gathered with the same functions that answer `Scenario.series`: each
//! scenario evaluated once over the whole timeline (stored values through its base chain,
//! parameters resolved the same way, formulas by the formula engine), then sliced to the
//! report's metrics and periods. The writers ([`super::csv`], [`super::xlsx`]) only lay it out.

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::rows::ReportRow;
use crate::{
    domain::{
        Core,
        loader::{LoadError, RequestLoader, UserById},
        modelling::{
            ModelRow,
            evaluation::{EvalBudget, EvalSession},
            formula::round_output,
            loaders::ScenarioById,
            metrics::MetricRow,
            parameters::{EffectiveParameter, effective},
            scenarios::{ScenarioRow, chain_of},
            selection::{Series, SeriesRequest},
            series::{load_model_data, series},
        },
    },
    error::{AppError, AppResult},
};

/// One scenario of a report: its series and the assumptions behind them.
#[derive(Debug, Clone)]
pub struct ScenarioContent {
    /// The scenario.
    pub scenario: ScenarioRow,
    /// The names of its bases, nearest first (empty for a scenario of no other).
    pub bases: Vec<String>,
    /// Its effective parameter values.
    pub parameters: Vec<EffectiveParameter>,
    /// The selected metrics over the selected periods, as `series` returns them.
    pub series: Vec<Series>,
}

/// Everything a report file shows.
#[derive(Debug, Clone)]
pub struct ReportContent {
    /// The report's name.
    pub name: String,
    /// The model.
    pub model: ModelRow,
    /// The selected periods, in order.
    pub periods: Vec<NaiveDate>,
    /// The selected metrics, in order.
    pub metrics: Vec<MetricRow>,
    /// The scenarios, in the order asked for.
    pub scenarios: Vec<ScenarioContent>,
    /// The display name of who asked for it (`None`: an API key, or an account since erased).
    pub generated_by: Option<String>,
    /// When the file was written.
    pub generated_at: DateTime<Utc>,
}

/// A value as the API shows it: rounded half-even to 6 places.
pub fn shown(value: Option<Decimal>) -> Option<Decimal> {
    value.map(round_output)
}

/// Gather the content of `report`: the scenarios' grids through one loader (as one request
/// would), evaluated within a budget of `FV_EVAL_BUDGET` per scenario. A scenario deleted (or
/// a model deleted) since the report was asked for fails it with a sentence that says so.
#[tracing::instrument(skip_all, fields(report = %report.id))]
pub async fn gather(core: &Core, report: &ReportRow) -> AppResult<ReportContent> {
    let loader: RequestLoader =
        DataLoader::with_cache(core.loader(), tokio::spawn, HashMapCache::default());
    let ids = report.scenarios();
    let budget = core.settings.eval_budget.saturating_mul(ids.len() as u64);
    let session = EvalSession::new(Arc::new(EvalBudget::new(budget)), Arc::default());
    let keys = report.metrics();
    let request = SeriesRequest {
        metric_keys: (!keys.is_empty()).then_some(keys.as_slice()),
        from: report.from_period,
        to: report.to_period,
    };
    let unwrap = |e: LoadError| Arc::try_unwrap(e).unwrap_or_else(|e| clone_error(&e));
    let mut scenarios = Vec::with_capacity(ids.len());
    for (at, id) in ids.iter().enumerate() {
        let scenario = loader
            .load_one(ScenarioById(*id))
            .await
            .map_err(unwrap)?
            .filter(|s| s.model_id == report.model_id)
            .ok_or_else(|| {
                AppError::bad_input(
                    "scenarioIds",
                    format!(
                        "scenario {} of the report was deleted after the report was asked for",
                        at + 1
                    ),
                )
            })?;
        let series = series(core, &session, &loader, &scenario, &request)
            .await
            .map_err(unwrap)?;
        // Loaded already by the evaluation: served from the loader's cache.
        let data = load_model_data(&loader, &scenario).await.map_err(unwrap)?;
        let bases = chain_of(scenario.id, &data.scenarios)
            .into_iter()
            .skip(1)
            .filter_map(|b| data.scenarios.get(&b).map(|s| s.name.clone()))
            .collect();
        let parameters = effective(
            scenario.id,
            &data.parameters,
            &data.scenarios,
            &data.overrides,
        );
        scenarios.push((scenario, bases, parameters, series, data.model));
    }
    let Some((_, _, _, first_series, model)) = scenarios.first() else {
        return Err(AppError::internal(anyhow::anyhow!(
            "a report without scenarios"
        )));
    };
    let model = model.clone();
    let metrics = first_series.iter().map(|s| s.metric.clone()).collect();
    let periods = first_series
        .first()
        .map(|s| s.points.iter().map(|p| p.period).collect())
        .unwrap_or_else(|| {
            // No metric selected (a model without metrics): the periods still head the file.
            let all = model.periods();
            let range = crate::domain::modelling::selection::period_range(
                &model,
                &all,
                &request,
                ("from", "to"),
            )
            .unwrap_or(0..all.len());
            all[range].to_vec()
        });
    let generated_by = match report.created_by {
        Some(user) => loader
            .load_one(UserById(user))
            .await
            .map_err(unwrap)?
            .map(|u| u.display_name),
        None => None,
    };
    Ok(ReportContent {
        name: report.name.clone(),
        model,
        periods,
        metrics,
        scenarios: scenarios
            .into_iter()
            .map(|(scenario, bases, parameters, series, _)| ScenarioContent {
                scenario,
                bases,
                parameters,
                series,
            })
            .collect(),
        generated_by,
        generated_at: Utc::now(),
    })
}

/// A loader's shared error as an owned one: client errors keep their text, anything else
/// becomes internal with its cause's text.
fn clone_error(err: &AppError) -> AppError {
    match err {
        AppError::NotFound(what) => AppError::NotFound(what),
        AppError::BadUserInput { field, message } => AppError::BadUserInput {
            field: field.clone(),
            message: message.clone(),
        },
        AppError::TooComplex(m) => AppError::TooComplex(m.clone()),
        AppError::Unavailable => AppError::Unavailable,
        AppError::Internal(cause) => AppError::internal(anyhow::anyhow!("{cause:#}")),
        other => AppError::internal(anyhow::anyhow!("{other}")),
    }
}
