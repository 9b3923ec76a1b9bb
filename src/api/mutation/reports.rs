//! Report mutations: `generateReport`, `deleteReport`.

use async_graphql::{Context, ID, InputObject, Object};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        scalars::Date,
        types::{Report, ReportFormat},
    },
    domain::reports::service::{self, GenerateReport},
};

/// What to export.
#[derive(InputObject)]
pub struct GenerateReportInput {
    /// The model.
    pub model_id: ID,
    /// The report's name (the file downloads as `<name>.csv` or `<name>.xlsx`).
    pub name: String,
    /// CSV or XLSX.
    pub format: ReportFormat,
    /// The scenarios, in order: 1 to 20, each once, all of the model.
    pub scenario_ids: Vec<ID>,
    /// These metrics, in this order; omitted or empty: every metric in display order.
    pub metric_keys: Option<Vec<String>>,
    /// First period (a period of the timeline); omitted: the first.
    pub from: Option<Date>,
    /// Last period (a period of the timeline, not before `from`); omitted: the last.
    pub to: Option<Date>,
}

#[derive(Default)]
pub struct ReportMutation;

#[Object]
impl ReportMutation {
    /// Export the series of one or more scenarios of a model as a file (VIEWER+: a report shows
    /// what `series` shows). Returns the report PENDING; a background job makes it READY (or
    /// FAILED, with `error`). A full queue is `UNAVAILABLE` with `retryAfter`; invalid input is
    /// `BAD_USER_INPUT` and records nothing. Audited as `report.generate`.
    #[graphql(guard = "Authenticated")]
    async fn generate_report(
        &self,
        ctx: &Context<'_>,
        input: GenerateReportInput,
    ) -> ApiResult<Report> {
        let st = state(ctx);
        let model_id = decode(&input.model_id, NodeKind::FinancialModel, "input.modelId")?;
        let scenario_ids = input
            .scenario_ids
            .iter()
            .map(|id| decode(id, NodeKind::Scenario, "input.scenarioIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let row = service::generate(
            &st.core,
            &st.caller(),
            GenerateReport {
                model_id,
                name: input.name,
                format: input.format.into(),
                scenario_ids,
                metric_keys: input.metric_keys,
                from: input.from.map(|d| d.0),
                to: input.to.map(|d| d.0),
            },
        )
        .await
        .api()?;
        Ok(Report(row))
    }

    /// Delete a report and its file: its creator, or an ADMIN+ of the organization (other
    /// members: `FORBIDDEN`). Audited as `report.delete`.
    #[graphql(guard = "Authenticated")]
    async fn delete_report(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let st = state(ctx);
        let id = decode(&id, NodeKind::Report, "id")?;
        service::delete(&st.core, &st.caller(), id).await.api()
    }
}
