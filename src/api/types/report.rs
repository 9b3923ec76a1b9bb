//! `type Report`, `enum ReportFormat`, `enum ReportStatus`.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::{FinancialModel, Scenario, User};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        relay::{NodeKind, global_id},
        scalars::Date,
    },
    domain::{modelling::loaders::ScenarioById, reports::ReportRow},
};

/// The file format of a report.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::reports::ReportFormat")]
pub enum ReportFormat {
    /// Comma-separated values (RFC 4180, UTF-8): a header `scenario,metric_key,metric_name,unit`
    /// and one column per period, then one row per scenario × metric; an empty cell is null.
    Csv,
    /// An Excel workbook: a cover sheet, one sheet per scenario (metrics down, periods across),
    /// and a `Compare` sheet for two or more scenarios.
    Xlsx,
}

/// Where a report is in its life.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::reports::ReportStatus")]
pub enum ReportStatus {
    /// Queued or being generated.
    Pending,
    /// Generated: `downloadUrl` serves the file.
    Ready,
    /// Generation failed: `error` says why.
    Failed,
}

/// A generated report: the series of one or more scenarios of a model, as `series` computes
/// them, exported as a CSV or XLSX file.
pub struct Report(pub ReportRow);

#[Object]
impl Report {
    /// The report's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Report, &[self.0.id])
    }

    /// The model exported.
    async fn model(&self, ctx: &Context<'_>) -> ApiResult<FinancialModel> {
        FinancialModel::fetch(ctx, self.0.model_id).await
    }

    /// The name given; the file downloads as `<name>.csv` or `<name>.xlsx`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// CSV or XLSX.
    async fn format(&self) -> ReportFormat {
        self.0.format.into()
    }

    /// PENDING while queued or being generated, then READY or FAILED.
    async fn status(&self) -> ReportStatus {
        self.0.status.into()
    }

    /// The scenarios exported, in the order asked for (a scenario deleted since is left out).
    async fn scenarios(&self, ctx: &Context<'_>) -> ApiResult<Vec<Scenario>> {
        let ids = self.0.scenarios();
        let mut found = loader(ctx)
            .load_many(ids.iter().copied().map(ScenarioById))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(&ScenarioById(*id)))
            .map(Scenario)
            .collect())
    }

    /// The metrics asked for, in order; empty: every metric of the model, in display order.
    async fn metric_keys(&self) -> Vec<String> {
        self.0.metrics()
    }

    /// First period exported; `null`: the timeline's first.
    async fn from(&self) -> Option<Date> {
        self.0.from_period.map(Date)
    }

    /// Last period exported; `null`: the timeline's last.
    async fn to(&self) -> Option<Date> {
        self.0.to_period.map(Date)
    }

    /// The file's size in bytes, once READY.
    async fn byte_size(&self) -> Option<i32> {
        // Reports are far below 2 GiB; saturate rather than fail if not.
        self.0
            .byte_size
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// SHA-256 of the file, lowercase hex, once READY (also the download's `ETag`).
    async fn sha256(&self) -> Option<String> {
        self.0.sha256_hex()
    }

    /// Where to download the file once READY (`null` before): a path on this API
    /// (`/reports/<id>`), fetched with the same `Authorization: Bearer <token>` header as GraphQL.
    async fn download_url(&self) -> Option<String> {
        (self.0.status == crate::domain::reports::ReportStatus::Ready)
            .then(|| format!("/reports/{}", global_id(NodeKind::Report, &[self.0.id]).0))
    }

    /// Why the generation FAILED (`null` otherwise).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// Who asked for it; `null` for an API key, or when that user is no longer visible to you.
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        User::visible(ctx, self.0.created_by).await
    }

    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it became READY or FAILED.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
}
