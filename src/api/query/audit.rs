//! `auditEvents`, `verifyAuditChain`: an organization's history (ADMIN+).

use async_graphql::{Context, ID, Object};

use crate::{
    api::{
        context::{loader, state},
        errors::ApiResult,
        guards::OrgRoleGuard,
        relay::{Conn, NodeKind, PageArgs, decode},
        types::{AuditChainReport, AuditEvent, AuditEventFilter, audit_event::audit_connection},
    },
    domain::{
        audit::{history::HistoryScope, verify::verify_chain},
        loader::OrganizationById,
        organizations::OrgRole,
    },
    error::AppError,
};

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// An organization's audit history in sequence order (`last: N`: the latest N); cursors are
    /// sequences. Paged in the database: one statement per page whatever its size, a second only
    /// when `totalCount` (or `pageInfo` beyond the cursors) is selected (ADMIN+).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::api::complexity::audit_page(first, last, child_complexity)",
        guard = "OrgRoleGuard::org_input(OrgRole::Admin, &organization_id, \"organizationId\")"
    )]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> ApiResult<Conn<AuditEvent>> {
        let org = decode(&organization_id, NodeKind::Organization, "organizationId")?;
        let args = PageArgs::new(first, after, last, before);
        audit_connection(ctx, HistoryScope::Organization(org), args, filter).await
    }

    /// Recompute the organization's hash chain from the stored events and report the first
    /// event that was edited, or follows a removed one (ADMIN+).
    #[graphql(
        complexity = "crate::api::complexity::VERIFY_AUDIT_CHAIN",
        guard = "OrgRoleGuard::org_input(OrgRole::Admin, &organization_id, \"organizationId\")"
    )]
    async fn verify_audit_chain(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
    ) -> ApiResult<AuditChainReport> {
        let org = decode(&organization_id, NodeKind::Organization, "organizationId")?;
        let organization = loader(ctx)
            .load_one(OrganizationById(org))
            .await?
            .ok_or(AppError::NotFound("organization"))?;
        let report = verify_chain(&state(ctx).core, org).await?;
        Ok(AuditChainReport {
            organization,
            report,
        })
    }
}
