//! `type AuditEvent`, and the paging of audit connections.

use async_graphql::{
    Context, ID, Json, Object,
    connection::{Connection, Edge},
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Actor, ApiKey, AuditEventFilter, Organization, User};
use crate::{
    api::{
        context::{loader, state},
        errors::ApiResult,
        guards::{AuditPrivateGuard, visible_user},
        relay::{Conn, ConnectionTotal, DEFAULT_PAGE, NodeKind, PageArgs, global_id, sequence_id},
    },
    domain::{
        audit::history::{self, AuditEventRow, HistoryScope, PageExtras, PageRequest},
        auth::api_keys::ApiKeyById,
        loader::OrganizationById,
    },
    error::AppError,
};

/// One entry of the audit history: who did what to which entity, and the chain hashes that
/// make any later edit or removal detectable (`verifyAuditChain`).
pub struct AuditEvent(pub AuditEventRow);

/// The node kind of an audited entity type; `None` for types that are not nodes.
fn entity_kind(entity_type: &str) -> Option<NodeKind> {
    Some(match entity_type {
        "User" => NodeKind::User,
        "Organization" => NodeKind::Organization,
        "Membership" => NodeKind::Membership,
        "FinancialModel" => NodeKind::FinancialModel,
        "Scenario" => NodeKind::Scenario,
        "Parameter" => NodeKind::Parameter,
        "Metric" => NodeKind::Metric,
        "ApiKey" => NodeKind::ApiKey,
        "ModelFile" => NodeKind::ModelFile,
        "Report" => NodeKind::Report,
        "WebhookEndpoint" => NodeKind::WebhookEndpoint,
        _ => return None,
    })
}

/// The global ID of an event's entity (also in webhook payloads).
pub(crate) fn entity_global_id(row: &AuditEventRow) -> Option<ID> {
    let entity = row.entity_id?;
    match entity_kind(&row.entity_type)? {
        // Membership events are recorded on the member's user id.
        NodeKind::Membership => Some(global_id(
            NodeKind::Membership,
            &[row.organization_id?, entity],
        )),
        kind => Some(global_id(kind, &[entity])),
    }
}

#[Object]
impl AuditEvent {
    /// The event's global ID.
    pub async fn id(&self) -> ID {
        sequence_id(NodeKind::AuditEvent, self.0.id)
    }

    /// The event's place in the stream, as a decimal string: strictly increasing; the cursor of
    /// audit connections and the `after` of the subscription.
    async fn sequence(&self) -> String {
        self.0.id.to_string()
    }

    /// `<entity>.<verb>`, e.g. `model.create`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The type of the entity acted on, e.g. `FinancialModel`.
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }

    /// The entity's global ID; `null` when the entity type has none (the entity may since have
    /// been deleted: the ID still names it).
    async fn entity_id(&self) -> Option<ID> {
        entity_global_id(&self.0)
    }

    /// Who acted: a user or an API key; `null` for anonymous acts (failed sign-ins) and for
    /// users no longer visible to you.
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<Actor>> {
        if let Some(key) = self.0.actor_api_key_id {
            return Ok(loader(ctx)
                .load_one(ApiKeyById(key))
                .await?
                .map(|row| Actor::ApiKey(ApiKey(row))));
        }
        let Some(user) = self.0.actor_user_id else {
            return Ok(None);
        };
        Ok(visible_user(ctx, user)
            .await?
            .map(|row| Actor::User(User(row))))
    }

    /// The organization; `null` for platform events (and deleted organizations).
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        Ok(loader(ctx)
            .load_one(OrganizationById(id))
            .await?
            .map(Organization))
    }

    /// The changed fields before the change (ADMIN+).
    #[graphql(guard = "AuditPrivateGuard::new(self.0.organization_id)")]
    async fn old_values(&self) -> Option<Json<Value>> {
        self.0.old_values.clone().map(Json)
    }

    /// The changed fields after the change, or a creation's fields (ADMIN+).
    #[graphql(guard = "AuditPrivateGuard::new(self.0.organization_id)")]
    async fn new_values(&self) -> Option<Json<Value>> {
        self.0.new_values.clone().map(Json)
    }

    /// The client's address (ADMIN+).
    #[graphql(guard = "AuditPrivateGuard::new(self.0.organization_id)")]
    async fn ip_address(&self) -> Option<String> {
        self.0.ip_address.map(|ip| ip.addr().to_string())
    }

    /// The client's `User-Agent` (ADMIN+).
    #[graphql(guard = "AuditPrivateGuard::new(self.0.organization_id)")]
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// The request's id (`x-request-id`), to find its logs.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// SHA-256 of the previous hash and this event's canonical JSON, lowercase hex.
    async fn hash(&self) -> String {
        hex::encode(&self.0.hash)
    }

    /// The previous event's hash in the organization's chain, lowercase hex; `null` for the first.
    async fn prev_hash(&self) -> Option<String> {
        self.0.prev_hash.as_ref().map(hex::encode)
    }

    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A cursor of an audit connection: the sequence, as a decimal string.
fn sequence_cursor(cursor: Option<String>, field: &str) -> Result<Option<i64>, AppError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| AppError::bad_input(field, "not a valid cursor: pass a `sequence`"))
        })
        .transpose()
}

/// What of an audit connection the query selects besides its rows (through fragments too:
/// async-graphql's look-ahead follows spreads and inline fragments, and over-reports rather than
/// misses, e.g. it ignores `@skip`), so that the page's extra work runs only when it is read.
fn selected_extras(ctx: &Context<'_>) -> PageExtras {
    let selection = ctx.look_ahead();
    let page_info = selection.field("pageInfo");
    PageExtras {
        total: selection.field("totalCount").exists(),
        has_previous: page_info.field("hasPreviousPage").exists(),
        has_next: page_info.field("hasNextPage").exists(),
    }
}

/// One page of a scope's history as a connection: one statement whatever the page size, and a
/// second only when the query selects `totalCount`, or `pageInfo` that events beyond the cursors
/// decide (`hasPreviousPage` after `after`, `hasNextPage` before `before`). Nested lists (many
/// organizations' `auditEvents` in one request) cost that per list.
pub async fn audit_connection(
    ctx: &Context<'_>,
    scope: HistoryScope,
    args: PageArgs,
    filter: Option<AuditEventFilter>,
) -> ApiResult<Conn<AuditEvent>> {
    let filter = filter.unwrap_or_default().into_domain()?;
    let request = PageRequest {
        first: PageArgs::size(args.first, "first")?,
        after: sequence_cursor(args.after, "after")?,
        last: PageArgs::size(args.last, "last")?,
        before: sequence_cursor(args.before, "before")?,
    };
    let extras = selected_extras(ctx);
    let page = history::page(
        &state(ctx).core,
        scope,
        &filter,
        request,
        extras,
        DEFAULT_PAGE,
    )
    .await?;
    let mut connection = Connection::with_additional_fields(
        page.has_previous,
        page.has_next,
        ConnectionTotal {
            // Not selected when not counted (see `selected_extras`): the 0 is never sent.
            total_count: page
                .total
                .map_or(0, |total| i32::try_from(total).unwrap_or(i32::MAX)),
        },
    );
    connection.edges = page
        .rows
        .into_iter()
        .map(|row| Edge::new(row.id.to_string(), AuditEvent(row)))
        .collect();
    Ok(connection)
}
