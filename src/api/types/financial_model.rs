//! `type FinancialModel`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    AuditEvent, AuditEventFilter, Metric, MetricKind, ModelFile, ModelStatus, Organization,
    Parameter, PeriodGranularity, Report, Scenario, ScenarioKind, User,
};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        guards::OrgRoleGuard,
        relay::{Conn, NodeKind, PageArgs, global_id, paginate, paginate_ordered, time_key},
        scalars::Date,
    },
    domain::{
        audit::history::HistoryScope,
        modelling::{
            ModelRow, ScenarioKind as DomainKind,
            loaders::{
                FilesOfModel, MetricsOfModel, ModelById, ParametersOfModel, ScenariosOfModel,
            },
        },
        reports::loaders::ReportsOfModel,
    },
    error::AppError,
};

/// A financial model: a timeline of periods, scenarios, parameters and metrics.
pub struct FinancialModel(pub ModelRow);

impl FinancialModel {
    /// The model a child row names, through the request's loader: the one place a type fetches
    /// its parent model.
    pub async fn fetch(ctx: &Context<'_>, id: uuid::Uuid) -> ApiResult<Self> {
        let row = loader(ctx)
            .load_one(ModelById(id))
            .await?
            .ok_or(AppError::NotFound("model"))?;
        Ok(Self(row))
    }
}

#[Object]
impl FinancialModel {
    /// The model's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::FinancialModel, &[self.0.id])
    }

    /// The organization that owns the model.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        Organization::fetch(ctx, self.0.organization_id).await
    }

    /// Name, unique in the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Free text.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// ISO 4217 currency of monetary metrics.
    async fn currency(&self) -> &str {
        &self.0.currency
    }

    /// Period length of the timeline.
    async fn period_granularity(&self) -> PeriodGranularity {
        self.0.period_granularity.into()
    }

    /// First period of the timeline.
    async fn start_period(&self) -> Date {
        Date(self.0.start_period)
    }

    /// Last period of the timeline (inclusive).
    async fn end_period(&self) -> Date {
        Date(self.0.end_period)
    }

    /// Every period of the timeline, in order.
    async fn periods(&self) -> Vec<Date> {
        self.0.periods().into_iter().map(Date).collect()
    }

    /// Lifecycle status.
    async fn status(&self) -> ModelStatus {
        self.0.status.into()
    }

    /// Version for optimistic concurrency: pass it back to `updateModel`/`archiveModel`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// Who created the model; `null` when that user is no longer visible to you.
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        User::visible(ctx, self.0.created_by).await
    }

    /// The model's scenarios, oldest first, optionally only those of the given kinds.
    #[graphql(complexity = "crate::api::complexity::page(first, last, child_complexity)")]
    async fn scenarios(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        kind: Option<Vec<ScenarioKind>>,
    ) -> ApiResult<Conn<Scenario>> {
        let kinds: Option<Vec<DomainKind>> = kind.map(|k| k.into_iter().map(Into::into).collect());
        let rows: Vec<_> = loader(ctx)
            .load_one(ScenariosOfModel(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|s| kinds.as_ref().is_none_or(|k| k.contains(&s.kind)))
            .collect();
        let args = PageArgs::new(first, after, last, before);
        Ok(paginate(
            rows,
            &args,
            |s| time_key(s.created_at, s.id),
            Scenario,
        )?)
    }

    /// The model's parameters, by key.
    async fn parameters(&self, ctx: &Context<'_>) -> ApiResult<Vec<Parameter>> {
        let rows = loader(ctx)
            .load_one(ParametersOfModel(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(Parameter).collect())
    }

    /// The model's metrics in display order, optionally only INPUT or DERIVED ones.
    async fn metrics(&self, ctx: &Context<'_>, kind: Option<MetricKind>) -> ApiResult<Vec<Metric>> {
        let kind = kind.map(crate::domain::modelling::MetricKind::from);
        let rows = loader(ctx)
            .load_one(MetricsOfModel(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .filter(|m| kind.is_none_or(|k| m.kind == k))
            .map(Metric)
            .collect())
    }

    /// The uploaded versions of the model's file, newest first (`uploadModelFile` adds one).
    #[graphql(complexity = "crate::api::complexity::page(first, None, child_complexity)")]
    async fn files(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Conn<ModelFile>> {
        let rows = loader(ctx)
            .load_one(FilesOfModel(self.0.id))
            .await?
            .unwrap_or_default();
        // Zero-padded so that the text order of the keys is the numeric order of versions.
        Ok(paginate_ordered(
            rows,
            &PageArgs::forward(first, after),
            |f| format!("{:010}", f.version_number),
            ModelFile,
            true,
        )?)
    }

    /// The model's generated reports, newest first (`generateReport` adds one).
    #[graphql(complexity = "crate::api::complexity::page(first, None, child_complexity)")]
    async fn reports(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Conn<Report>> {
        let rows = loader(ctx)
            .load_one(ReportsOfModel(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(paginate_ordered(
            rows,
            &PageArgs::forward(first, after),
            |r| time_key(r.created_at, r.id),
            Report,
            true,
        )?)
    }

    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The history of the model and of everything inside it (its scenarios, with their
    /// parameter overrides and values, its parameters and metrics), in sequence order (ADMIN+).
    #[graphql(
        complexity = "crate::api::complexity::audit_page(first, None, child_complexity)",
        guard = "OrgRoleGuard::org(crate::domain::organizations::OrgRole::Admin, self.0.organization_id)"
    )]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> ApiResult<Conn<AuditEvent>> {
        let scope = HistoryScope::Model {
            organization_id: self.0.organization_id,
            model_id: self.0.id,
        };
        super::audit_event::audit_connection(ctx, scope, PageArgs::forward(first, after), filter)
            .await
    }
}
