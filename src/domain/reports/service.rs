//! Report operations: `generateReport` (validate, record with its audit event, queue) and
//! `deleteReport`; and opening a READY report's file for `GET /reports/{id}`.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::rows::{ReportFormat, ReportRow, ReportStatus};
use crate::{
    db::schema::{financial_models, metrics, reports, scenarios},
    domain::{
        Core,
        audit::Trail,
        auth::Caller,
        limits::{MAX_KEY_LEN, text},
        modelling::{
            ModelRow,
            selection::{SeriesRequest, period_range},
        },
        names::validate_name,
        organizations::{OrgRole, service::require_role},
        storage::StoredObject,
    },
    error::{AppError, AppResult},
};

/// Scenarios one report may export: each is a sheet and a full evaluation.
pub const MAX_REPORT_SCENARIOS: usize = 20;

/// Metric keys one report may name (a model with more is exported whole by naming none).
pub const MAX_REPORT_METRIC_KEYS: usize = 1_000;

/// What `generateReport` asks for, decoded.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// The model.
    pub model_id: Uuid,
    /// The report's name (the file is `<name>.<extension>`).
    pub name: String,
    /// CSV or XLSX.
    pub format: ReportFormat,
    /// The scenarios, in order (at least one, each once, all of the model).
    pub scenario_ids: Vec<Uuid>,
    /// These metrics in this order; every metric in display order when `None` or empty.
    pub metric_keys: Option<Vec<String>>,
    /// First period; the timeline's first when `None`.
    pub from: Option<NaiveDate>,
    /// Last period; the timeline's last when `None`.
    pub to: Option<NaiveDate>,
}

#[derive(Insertable)]
#[diesel(table_name = reports)]
struct NewReport<'a> {
    id: Uuid,
    organization_id: Uuid,
    model_id: Uuid,
    name: &'a str,
    format: ReportFormat,
    status: ReportStatus,
    scenario_ids: Vec<Option<Uuid>>,
    metric_keys: Vec<Option<String>>,
    from_period: Option<NaiveDate>,
    to_period: Option<NaiveDate>,
    created_by: Option<Uuid>,
}

/// The checks that need no database: a name, one to [`MAX_REPORT_SCENARIOS`] distinct
/// scenarios, distinct metric keys.
fn check_shape(input: &GenerateReport) -> AppResult<String> {
    let name = validate_name(&input.name, "input.name")?;
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "input.name",
            "the name becomes a file name: no `/`, `\\` or control characters",
        ));
    }
    if input.scenario_ids.is_empty() || input.scenario_ids.len() > MAX_REPORT_SCENARIOS {
        return Err(AppError::bad_input(
            "input.scenarioIds",
            format!("name 1 to {MAX_REPORT_SCENARIOS} scenarios"),
        ));
    }
    for (i, id) in input.scenario_ids.iter().enumerate() {
        if input.scenario_ids[..i].contains(id) {
            return Err(AppError::bad_input(
                "input.scenarioIds",
                "a scenario is named twice",
            ));
        }
    }
    if let Some(keys) = &input.metric_keys {
        if keys.len() > MAX_REPORT_METRIC_KEYS {
            return Err(AppError::bad_input(
                "input.metricKeys",
                format!("name at most {MAX_REPORT_METRIC_KEYS} metrics (or none: every metric)"),
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            text(key, "input.metricKeys", MAX_KEY_LEN)?;
            if keys[..i].contains(key) {
                return Err(AppError::bad_input(
                    "input.metricKeys",
                    format!("the metric `{key}` is named twice"),
                ));
            }
        }
    }
    Ok(name)
}

/// A live model the caller may read (VIEWER+), share-locked so that it is not deleted under
/// the report being recorded. Non-members: `NotFound`, as if it did not exist.
async fn readable_model(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
) -> AppResult<ModelRow> {
    let model: ModelRow = financial_models::table
        .find(id)
        .filter(financial_models::deleted_at.is_null())
        .select(ModelRow::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("model"))?;
    require_role(conn, caller, model.organization_id, OrgRole::Viewer)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("model"),
            other => other,
        })?;
    Ok(model)
}

/// The checks against the model: every scenario a live one of it, every key one of its
/// metrics, `from`…`to` a range of its timeline.
async fn check_against_model(
    conn: &mut AsyncPgConnection,
    model: &ModelRow,
    input: &GenerateReport,
) -> AppResult<()> {
    let live: Vec<Uuid> = scenarios::table
        .filter(scenarios::id.eq_any(&input.scenario_ids))
        .filter(scenarios::model_id.eq(model.id))
        .filter(scenarios::deleted_at.is_null())
        .select(scenarios::id)
        .load(conn)
        .await?;
    if let Some(at) = input.scenario_ids.iter().position(|id| !live.contains(id)) {
        return Err(AppError::bad_input(
            "input.scenarioIds",
            format!(
                "scenario {} of the list is not a scenario of this model",
                at + 1
            ),
        ));
    }
    if let Some(keys) = input.metric_keys.as_deref().filter(|k| !k.is_empty()) {
        let known: Vec<String> = metrics::table
            .filter(metrics::model_id.eq(model.id))
            .select(metrics::key)
            .load(conn)
            .await?;
        if let Some(unknown) = keys.iter().find(|k| !known.contains(k)) {
            return Err(AppError::bad_input(
                "input.metricKeys",
                format!("the model has no metric `{unknown}`"),
            ));
        }
    }
    let request = SeriesRequest {
        metric_keys: None,
        from: input.from,
        to: input.to,
    };
    period_range(
        model,
        &model.periods(),
        &request,
        ("input.from", "input.to"),
    )?;
    Ok(())
}

/// Ask for a report (VIEWER+ of the model's organization: a report shows what its series
/// already show). A slot of the queue is taken first, so a full queue refuses the request
/// (`UNAVAILABLE`, retry later) before anything is written; then the row (PENDING) and its
/// `report.generate` event are written in one transaction, and the job is queued after the
/// commit. Invalid input is `BAD_USER_INPUT` and writes nothing.
#[tracing::instrument(skip_all, fields(model = %input.model_id))]
pub async fn generate(core: &Core, caller: &Caller, input: GenerateReport) -> AppResult<ReportRow> {
    let name = check_shape(&input)?;
    let slot = core.reports.reserve()?;
    let row = core
        .transaction(async |conn| {
            let model = readable_model(conn, caller, input.model_id).await?;
            check_against_model(conn, &model, &input).await?;
            let row: ReportRow = diesel::insert_into(reports::table)
                .values(NewReport {
                    id: Uuid::new_v4(),
                    organization_id: model.organization_id,
                    model_id: model.id,
                    name: &name,
                    format: input.format,
                    status: ReportStatus::Pending,
                    scenario_ids: input.scenario_ids.iter().copied().map(Some).collect(),
                    metric_keys: input
                        .metric_keys
                        .iter()
                        .flatten()
                        .cloned()
                        .map(Some)
                        .collect(),
                    from_period: input.from,
                    to_period: input.to,
                    created_by: caller.viewer.user_id(),
                })
                .returning(ReportRow::as_returning())
                .get_result(conn)
                .await?;
            Trail::of(caller, model.organization_id)
                .created(conn, "report.generate", &row)
                .await?;
            Ok(row)
        })
        .await?;
    slot.send(row.id);
    Ok(row)
}

/// Delete a report: its creator (while still a member) or an ADMIN+ of the organization; other
/// members get `FORBIDDEN`, non-members `NOT_FOUND`. The row and its `report.delete` event go in
/// one transaction, which waits for a job generating it (the row's lock); the file is removed
/// after the commit (a failure there is logged: the row, not the object, is the report).
#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn delete(core: &Core, caller: &Caller, id: Uuid) -> AppResult<bool> {
    let row = core
        .transaction(async |conn| {
            let row: ReportRow = reports::table
                .find(id)
                .select(ReportRow::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or(AppError::NotFound("report"))?;
            let own = row.created_by.is_some() && row.created_by == caller.viewer.user_id();
            let min = if own { OrgRole::Viewer } else { OrgRole::Admin };
            require_role(conn, caller, row.organization_id, min)
                .await
                .map_err(|e| match e {
                    AppError::NotFound(_) => AppError::NotFound("report"),
                    AppError::Forbidden(_) => AppError::Forbidden(
                        "only the report's creator or an ADMIN may delete it".into(),
                    ),
                    other => other,
                })?;
            diesel::delete(reports::table.find(id))
                .execute(conn)
                .await?;
            Trail::of(caller, row.organization_id)
                .deleted(conn, "report.delete", &row)
                .await?;
            Ok(row)
        })
        .await?;
    if let Some(key) = &row.storage_key {
        core.files.delete_best_effort(key).await;
    }
    Ok(true)
}

/// A READY report's row and its file, still in the store.
#[derive(Debug)]
pub struct OpenedReport {
    /// The row.
    pub row: ReportRow,
    /// The file, read as it is sent.
    pub content: StoredObject,
}

/// Open a report the caller may read (VIEWER+ of its model's organization, or a superadmin):
/// missing, of a deleted model or of another organization is `NotFound` alike; not READY yet
/// (or FAILED) is `CONFLICT`, saying which.
#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn open(core: &Core, caller: &Caller, id: Uuid) -> AppResult<OpenedReport> {
    let row = {
        let mut conn = core.db.conn().await?;
        let row: ReportRow = reports::table
            .inner_join(financial_models::table)
            .filter(reports::id.eq(id))
            .filter(financial_models::deleted_at.is_null())
            .select(ReportRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("report"))?;
        require_role(&mut conn, caller, row.organization_id, OrgRole::Viewer)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) | AppError::Forbidden(_) => AppError::NotFound("report"),
                other => other,
            })?;
        row
    };
    let key = match (row.status, &row.storage_key) {
        (ReportStatus::Ready, Some(key)) => key.clone(),
        (status, _) => {
            return Err(AppError::Conflict(format!(
                "the report is {status}: its file exists once it is READY"
            )));
        }
    };
    // The connection went back to the pool above: a slow store must not hold it.
    let content = core.files.get(&key).await?;
    Ok(OpenedReport { row, content })
}
