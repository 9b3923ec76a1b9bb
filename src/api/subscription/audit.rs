//! `Subscription.auditEvents`: the organization's audit stream, resumable with `after`.

use async_graphql::{Context, ID, Subscription};
use futures_util::{Stream, StreamExt};

use crate::{
    api::{
        context::state,
        errors::ApiError,
        guards::OrgRoleGuard,
        relay::{NodeKind, decode},
        types::{AuditEvent, AuditEventFilter},
    },
    domain::{audit::live, organizations::OrgRole},
    error::AppError,
};

#[derive(Default)]
pub struct AuditSubscription;

#[Subscription]
impl AuditSubscription {
    /// The organization's audit events as they commit (ADMIN+). With `after` (a `sequence`), it
    /// first replays every event with a greater sequence, in order, then continues live with no
    /// gap and no duplicate: a client that reconnects with the last sequence it saw receives every
    /// event exactly once. Without `after` it starts with the next event. It ends with a
    /// `FORBIDDEN` error when the caller's session or key is revoked or their role drops below
    /// ADMIN, and with an `INTERNAL` error when the database stays unreachable (resume with `after`).
    #[graphql(
        guard = "OrgRoleGuard::org_input(OrgRole::Admin, &organization_id, \"organizationId\")"
    )]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> Result<impl Stream<Item = Result<AuditEvent, ApiError>> + use<>, ApiError> {
        let st = state(ctx);
        let organization = decode(&organization_id, NodeKind::Organization, "organizationId")?;
        let after = after
            .map(|a| {
                a.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        AppError::bad_input("after", "`after` is a sequence: a decimal number")
                    })
            })
            .transpose()?;
        let filter = filter
            .map(AuditEventFilter::into_domain)
            .transpose()?
            .unwrap_or_default();
        let events = live::follow(
            st.core.clone(),
            st.caller().viewer.clone(),
            organization,
            after,
            filter,
        );
        // Each event is resolved like a query of its own: a fresh evaluation memo and budget.
        let evaluations = st.evaluations.clone();
        Ok(events.map(move |item| {
            evaluations.reset();
            item.map(AuditEvent).map_err(ApiError::from)
        }))
    }
}
