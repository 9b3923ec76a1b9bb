//! `type AuditRetention`: how long an organization keeps its audit events in the database, and
//! what has been archived to the object store.

use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};

use super::Organization;
use crate::{api::errors::ApiResult, domain::audit::retention::RetentionStatus};

/// An organization's audit retention and archive.
pub struct AuditRetention(pub RetentionStatus);

#[Object]
impl AuditRetention {
    /// The organization.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        Organization::fetch(ctx, self.0.organization_id).await
    }

    /// Months of events kept in the database (at least 12); older whole months are archived
    /// as JSON Lines to the object store. `null`: events are kept forever.
    async fn months(&self) -> Option<i32> {
        self.0.months
    }

    /// Events created before this instant were archived and are no longer in the table (nor
    /// in `auditEvents`); `null` when nothing was archived. `verifyAuditChain` starts from the
    /// last archived hash.
    async fn archived_through(&self) -> Option<DateTime<Utc>> {
        self.0.archived_through
    }

    /// How many events have been archived.
    async fn archived_events(&self) -> i32 {
        i32::try_from(self.0.archived_events).unwrap_or(i32::MAX)
    }
}
