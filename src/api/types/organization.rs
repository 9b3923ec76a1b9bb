//! `type Organization`.

use async_graphql::{
    Context, ID, Json, Object,
    connection::{Connection, Edge},
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{
    ApiKey, AuditEvent, AuditEventFilter, AuditRetention, FinancialModel, Membership, ModelFilter,
    ModelOrder, OrgRole, SortDirection, audit_event::audit_connection,
};
use crate::{
    api::{
        context::{loader, state},
        errors::ApiResult,
        guards::OrgRoleGuard,
        relay::{Conn, NodeKind, PageArgs, global_id, paginate, paginate_ordered, time_key},
    },
    domain::{
        audit::{history::HistoryScope, retention},
        auth::api_keys::ApiKeysOfOrganization,
        loader::{MembershipsOfOrganization, OrganizationById},
        modelling::loaders::ModelsOfOrganization,
        organizations::OrganizationRow,
    },
    error::AppError,
};

/// A tenant: members, models and their audit history live inside one organization.
pub struct Organization(pub OrganizationRow);

impl Organization {
    /// The organization a child row names, through the request's loader: the one place a type
    /// fetches its parent organization.
    pub async fn fetch(ctx: &Context<'_>, id: Uuid) -> ApiResult<Self> {
        let row = loader(ctx)
            .load_one(OrganizationById(id))
            .await?
            .ok_or(AppError::NotFound("organization"))?;
        Ok(Self(row))
    }

    /// Replace the ids of a paged connection by the organizations, loaded in one batch.
    pub async fn load_connection(
        ctx: &Context<'_>,
        page: Conn<Uuid>,
    ) -> ApiResult<Conn<Organization>> {
        let rows = loader(ctx)
            .load_many(page.edges.iter().map(|e| OrganizationById(e.node)))
            .await?;
        let mut out = Connection::with_additional_fields(
            page.has_previous_page,
            page.has_next_page,
            page.additional_fields,
        );
        out.edges = page
            .edges
            .into_iter()
            .filter_map(|e| {
                rows.get(&OrganizationById(e.node))
                    .map(|row| Edge::new(e.cursor, Organization(row.clone())))
            })
            .collect();
        Ok(out)
    }
}

#[Object]
impl Organization {
    /// The organization's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::Organization, &[self.0.id])
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Unique URL-safe handle; `organization(slug:)` finds it.
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// Free-form settings object.
    async fn settings(&self) -> Json<Value> {
        Json(self.0.settings.clone())
    }

    /// Version for optimistic concurrency: pass it back to `updateOrganization`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The caller's role here; `null` for a superadmin who is not a member.
    async fn viewer_role(&self, ctx: &Context<'_>) -> ApiResult<Option<OrgRole>> {
        Ok(state(ctx)
            .caller()
            .viewer
            .membership_role(self.0.id)
            .map(Into::into))
    }

    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Last change.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The organization's models (oldest first unless `orderBy` says otherwise), optionally
    /// filtered by status and a case-insensitive name search.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::api::complexity::page(first, last, child_complexity)")]
    async fn models(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ModelFilter>,
        order_by: Option<ModelOrder>,
    ) -> ApiResult<Conn<FinancialModel>> {
        let filter = filter.unwrap_or_default();
        let order = order_by.unwrap_or_default();
        let rows: Vec<_> = loader(ctx)
            .load_one(ModelsOfOrganization(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|m| filter.accepts(m))
            .collect();
        let args = PageArgs::new(first, after, last, before);
        let descending = order.direction == SortDirection::Desc;
        Ok(paginate_ordered(
            rows,
            &args,
            |m| order.key(m),
            FinancialModel,
            descending,
        )?)
    }

    /// The members, oldest first, optionally only those with `role`.
    #[graphql(complexity = "crate::api::complexity::page(first, last, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        role: Option<OrgRole>,
    ) -> ApiResult<Conn<Membership>> {
        let role = role.map(crate::domain::organizations::OrgRole::from);
        let rows: Vec<_> = loader(ctx)
            .load_one(MembershipsOfOrganization(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|m| role.is_none_or(|r| m.role == r))
            .collect();
        Ok(paginate(
            rows,
            &PageArgs::new(first, after, last, before),
            |m| time_key(m.created_at, m.user_id),
            Membership,
        )?)
    }

    /// The organization's API keys, oldest first; revoked ones only with `includeRevoked`
    /// (ADMIN+).
    #[graphql(
        complexity = "crate::api::complexity::page(first, None, child_complexity)",
        guard = "OrgRoleGuard::org(crate::domain::organizations::OrgRole::Admin, self.0.id)"
    )]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default_with = "Some(false)")] include_revoked: Option<bool>,
    ) -> ApiResult<Conn<ApiKey>> {
        // An explicit `null` means the default too.
        let include_revoked = include_revoked.unwrap_or(false);
        let rows: Vec<_> = loader(ctx)
            .load_one(ApiKeysOfOrganization(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|k| include_revoked || k.revoked_at.is_none())
            .collect();
        Ok(paginate(
            rows,
            &PageArgs::forward(first, after),
            |k| time_key(k.created_at, k.id),
            ApiKey,
        )?)
    }

    /// The organization's webhook endpoints, oldest first (ADMIN+).
    #[graphql(guard = "OrgRoleGuard::org(crate::domain::organizations::OrgRole::Admin, self.0.id)")]
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> ApiResult<Vec<super::WebhookEndpoint>> {
        Ok(loader(ctx)
            .load_one(crate::domain::webhooks::loaders::WebhookEndpointsOfOrganization(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(super::WebhookEndpoint)
            .collect())
    }

    /// The organization's audit history in sequence order (`last: N`: the latest N); cursors
    /// are sequences (ADMIN+).
    #[graphql(
        complexity = "crate::api::complexity::audit_page(first, last, child_complexity)",
        guard = "OrgRoleGuard::org(crate::domain::organizations::OrgRole::Admin, self.0.id)"
    )]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> ApiResult<Conn<AuditEvent>> {
        let args = PageArgs::new(first, after, last, before);
        audit_connection(ctx, HistoryScope::Organization(self.0.id), args, filter).await
    }

    /// How long the organization keeps its audit events, and what was archived (ADMIN+).
    #[graphql(guard = "OrgRoleGuard::org(crate::domain::organizations::OrgRole::Admin, self.0.id)")]
    async fn audit_retention(&self, ctx: &Context<'_>) -> ApiResult<AuditRetention> {
        let status =
            retention::status(&state(ctx).core, self.0.id, self.0.audit_retention_months).await?;
        Ok(AuditRetention(status))
    }
}
