//! Endpoint operations (ADMIN+ of the organization), each one transaction with its audit event:
//! `create` (returns the secret, once), `update`, `rotate_secret`, `delete`, `replay`. Every
//! change bumps the row's `version`, so that a delivery started before it does not move the
//! cursor after it.

use chrono::{Duration as Span, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use url::Url;
use uuid::Uuid;

use super::{guard, rows::WebhookEndpointRow, signing};
use crate::{
    db::schema::{audit_events, organizations, webhook_endpoints},
    domain::{
        Core,
        audit::Trail,
        auth::Caller,
        limits::{MAX_KEY_LEN, text},
        organizations::{OrgRole, service::require_role},
    },
    error::{AppError, AppResult},
};

/// Endpoints one organization may have.
pub const MAX_ENDPOINTS_PER_ORGANIZATION: i64 = 20;
/// Longest URL.
pub const MAX_URL_LEN: usize = 2_048;
/// Longest description.
pub const MAX_WEBHOOK_DESCRIPTION_LEN: usize = 500;
/// Most actions one filter names.
pub const MAX_FILTER_ACTIONS: usize = 50;
/// How long the previous secret still signs (a second signature) after a rotation, so that
/// receivers can switch without losing a message.
pub const ROTATION_GRACE_HOURS: i64 = 24;

/// What `createWebhookEndpoint` asks for.
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    /// Where to POST.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// Only these actions (`None`: all).
    pub actions: Option<Vec<String>>,
    /// Only this entity type (`None`: all).
    pub entity_type: Option<String>,
    /// Whether it starts delivering at once.
    pub active: bool,
}

/// What `updateWebhookEndpoint` changes: `None` leaves a field as it is; `Some(None)` clears
/// a nullable one.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    /// A new URL.
    pub url: Option<String>,
    /// A new description.
    pub description: Option<Option<String>>,
    /// A new action filter.
    pub actions: Option<Option<Vec<String>>>,
    /// A new entity type filter.
    pub entity_type: Option<Option<String>>,
    /// Pause (`false`) or resume (`true`; also resumes an endpoint paused as failing).
    pub active: Option<bool>,
}

/// A checked URL, in its normalised form.
async fn checked_url(core: &Core, raw: &str, field: &str) -> AppResult<String> {
    let raw = text(raw.trim(), field, MAX_URL_LEN)?;
    let url = Url::parse(raw).map_err(|_| AppError::bad_input(field, "not a valid URL"))?;
    guard::check_url(&url, core.settings.webhooks.allow_private, field).await?;
    Ok(url.to_string())
}

fn checked_description(raw: Option<String>, field: &str) -> AppResult<Option<String>> {
    match raw {
        Some(d) => {
            text(&d, field, MAX_WEBHOOK_DESCRIPTION_LEN)?;
            Ok(Some(d).filter(|d| !d.trim().is_empty()))
        }
        None => Ok(None),
    }
}

fn checked_actions(raw: Option<Vec<String>>, field: &str) -> AppResult<Option<Vec<String>>> {
    let Some(actions) = raw else {
        return Ok(None);
    };
    if actions.is_empty() || actions.len() > MAX_FILTER_ACTIONS {
        return Err(AppError::bad_input(
            field,
            format!("name 1 to {MAX_FILTER_ACTIONS} actions, or none (null) for every action"),
        ));
    }
    for action in &actions {
        text(action, field, MAX_KEY_LEN)?;
        if action.trim().is_empty() {
            return Err(AppError::bad_input(field, "an action is empty"));
        }
    }
    Ok(Some(actions))
}

fn checked_entity_type(raw: Option<String>, field: &str) -> AppResult<Option<String>> {
    raw.map(|e| {
        text(&e, field, MAX_KEY_LEN)?;
        if e.trim().is_empty() {
            return Err(AppError::bad_input(field, "the entity type is empty"));
        }
        Ok(e)
    })
    .transpose()
}

fn array(actions: Option<Vec<String>>) -> Option<Vec<Option<String>>> {
    actions.map(|a| a.into_iter().map(Some).collect())
}

/// The newest sequence of the organization's chain (0 when it has none).
async fn head(conn: &mut AsyncPgConnection, organization_id: Uuid) -> AppResult<i64> {
    let max: Option<i64> = audit_events::table
        .filter(audit_events::organization_id.eq(organization_id))
        .select(diesel::dsl::max(audit_events::id))
        .first(conn)
        .await?;
    Ok(max.unwrap_or(0))
}

#[derive(Insertable)]
#[diesel(table_name = webhook_endpoints)]
struct InsertEndpoint<'a> {
    organization_id: Uuid,
    url: &'a str,
    description: Option<&'a str>,
    actions: Option<Vec<Option<String>>>,
    entity_type: Option<&'a str>,
    active: bool,
    secret: &'a str,
    cursor: i64,
    created_by: Option<Uuid>,
}

/// Create an endpoint (ADMIN+). It receives the events committed after it (its own
/// `webhook.create` first). Returns the row and its signing secret, which is never shown again.
#[tracing::instrument(skip_all, fields(organization = %organization_id))]
pub async fn create(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    input: NewWebhookEndpoint,
) -> AppResult<(WebhookEndpointRow, String)> {
    let description = checked_description(input.description, "input.description")?;
    let actions = checked_actions(input.actions, "input.actions")?;
    let entity_type = checked_entity_type(input.entity_type, "input.entityType")?;
    // The role before the URL: resolving it is work a non-admin must not cause.
    core.transaction(async |conn| {
        require_role(conn, caller, organization_id, OrgRole::Admin).await
    })
    .await?;
    let url = checked_url(core, &input.url, "input.url").await?;
    let secret = signing::new_secret();
    let row = core
        .transaction(async |conn| {
            require_role(conn, caller, organization_id, OrgRole::Admin).await?;
            // Serialises creations in the organization, so the cap holds.
            organizations::table
                .find(organization_id)
                .select(organizations::id)
                .for_no_key_update()
                .first::<Uuid>(conn)
                .await?;
            let count: i64 = webhook_endpoints::table
                .filter(webhook_endpoints::organization_id.eq(organization_id))
                .count()
                .get_result(conn)
                .await?;
            if count >= MAX_ENDPOINTS_PER_ORGANIZATION {
                return Err(AppError::Conflict(format!(
                    "an organization has at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhook endpoints"
                )));
            }
            let cursor = head(conn, organization_id).await?;
            let row: WebhookEndpointRow = diesel::insert_into(webhook_endpoints::table)
                .values(InsertEndpoint {
                    organization_id,
                    url: &url,
                    description: description.as_deref(),
                    actions: array(actions),
                    entity_type: entity_type.as_deref(),
                    active: input.active,
                    secret: &secret,
                    cursor,
                    created_by: caller.viewer.user_id(),
                })
                .returning(WebhookEndpointRow::as_returning())
                .get_result(conn)
                .await?;
            Trail::of(caller, organization_id)
                .created(conn, "webhook.create", &row)
                .await?;
            Ok(row)
        })
        .await?;
    Ok((row, secret))
}

/// The endpoint, locked, if the caller is ADMIN+ of its organization: `NotFound` for
/// non-members (and missing endpoints), `Forbidden` for other members.
async fn locked(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
) -> AppResult<WebhookEndpointRow> {
    let row: WebhookEndpointRow = webhook_endpoints::table
        .find(id)
        .select(WebhookEndpointRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("webhook endpoint"))?;
    require_role(conn, caller, row.organization_id, OrgRole::Admin)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("webhook endpoint"),
            other => other,
        })?;
    Ok(row)
}

/// The endpoint's organization, if the caller is ADMIN+ there (checked before a URL is
/// resolved, see [`create`]).
async fn require_admin_of(core: &Core, caller: &Caller, id: Uuid) -> AppResult<()> {
    core.transaction(async |conn| locked(conn, caller, id).await.map(drop))
        .await
}

/// Change an endpoint's URL, description, filter or state (ADMIN+). Resuming (`active: true`)
/// also resumes an endpoint paused as failing: delivery continues from its cursor. A changed
/// filter drops the batch in flight (the next one is formed anew). Audited as `webhook.update`
/// (nothing is written when nothing changes).
#[tracing::instrument(skip_all, fields(endpoint = %id))]
pub async fn update(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    changes: WebhookChanges,
) -> AppResult<WebhookEndpointRow> {
    let description = changes
        .description
        .map(|d| checked_description(d, "input.description"))
        .transpose()?;
    let actions = changes
        .actions
        .map(|a| checked_actions(a, "input.actions"))
        .transpose()?;
    let entity_type = changes
        .entity_type
        .map(|e| checked_entity_type(e, "input.entityType"))
        .transpose()?;
    let url = match &changes.url {
        Some(raw) => {
            require_admin_of(core, caller, id).await?;
            Some(checked_url(core, raw, "input.url").await?)
        }
        None => None,
    };
    core.transaction(async |conn| {
        let old = locked(conn, caller, id).await?;
        let mut new = old.clone();
        if let Some(url) = url {
            new.url = url;
        }
        if let Some(description) = description {
            new.description = description;
        }
        if let Some(actions) = actions {
            new.actions = array(actions);
        }
        if let Some(entity_type) = entity_type {
            new.entity_type = entity_type;
        }
        if let Some(active) = changes.active {
            new.active = active;
        }
        let resume = changes.active == Some(true) && old.failing_since.is_some();
        let filter_changed = new.actions != old.actions || new.entity_type != old.entity_type;
        let unchanged = new.url == old.url
            && new.description == old.description
            && !filter_changed
            && new.active == old.active
            && !resume;
        if unchanged {
            return Ok(old);
        }
        let t = webhook_endpoints::table.find(id);
        diesel::update(t)
            .set((
                webhook_endpoints::url.eq(&new.url),
                webhook_endpoints::description.eq(&new.description),
                webhook_endpoints::actions.eq(&new.actions),
                webhook_endpoints::entity_type.eq(&new.entity_type),
                webhook_endpoints::active.eq(new.active),
                webhook_endpoints::version.eq(webhook_endpoints::version + 1),
                webhook_endpoints::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        if filter_changed {
            diesel::update(t)
                .set((
                    webhook_endpoints::batch_id.eq(None::<String>),
                    webhook_endpoints::batch_last.eq(None::<i64>),
                ))
                .execute(conn)
                .await?;
        }
        if resume {
            diesel::update(t)
                .set((
                    webhook_endpoints::failing_since.eq(None::<chrono::DateTime<Utc>>),
                    webhook_endpoints::retrying_since.eq(None::<chrono::DateTime<Utc>>),
                    webhook_endpoints::attempts.eq(0),
                    webhook_endpoints::next_attempt_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
        }
        let new: WebhookEndpointRow = t
            .select(WebhookEndpointRow::as_select())
            .first(conn)
            .await?;
        let trail = Trail::of(caller, new.organization_id);
        if resume && new.audit_same(&old) {
            trail
                .acted(conn, "webhook.update", &new, None, json!({"resumed": true}))
                .await?;
        } else {
            trail.updated(conn, "webhook.update", &old, &new).await?;
        }
        Ok(new)
    })
    .await
}

impl WebhookEndpointRow {
    /// Whether the audited values are the same.
    fn audit_same(&self, other: &Self) -> bool {
        use crate::domain::audit::Audited;
        self.audit_values() == other.audit_values()
    }
}

/// Replace an endpoint's signing secret (ADMIN+); returns the new one, shown once. For
/// [`ROTATION_GRACE_HOURS`] the previous secret still signs too (a second `v1,` signature), so
/// receivers switch without losing a message. Audited as `webhook.rotate_secret` (no secret in
/// the event).
#[tracing::instrument(skip_all, fields(endpoint = %id))]
pub async fn rotate_secret(
    core: &Core,
    caller: &Caller,
    id: Uuid,
) -> AppResult<(WebhookEndpointRow, String)> {
    let secret = signing::new_secret();
    let row = core
        .transaction(async |conn| {
            let old = locked(conn, caller, id).await?;
            let t = webhook_endpoints::table.find(id);
            let previous: String = t.select(webhook_endpoints::secret).first(conn).await?;
            let until = Utc::now() + Span::hours(ROTATION_GRACE_HOURS);
            let row: WebhookEndpointRow = diesel::update(t)
                .set((
                    webhook_endpoints::secret.eq(&secret),
                    webhook_endpoints::previous_secret.eq(Some(previous)),
                    webhook_endpoints::previous_secret_expires_at.eq(Some(until)),
                    webhook_endpoints::version.eq(webhook_endpoints::version + 1),
                    webhook_endpoints::updated_at.eq(diesel::dsl::now),
                ))
                .returning(WebhookEndpointRow::as_returning())
                .get_result(conn)
                .await?;
            Trail::of(caller, old.organization_id)
                .acted(
                    conn,
                    "webhook.rotate_secret",
                    &row,
                    None,
                    json!({"previousSecretValidUntil": until.to_rfc3339()}),
                )
                .await?;
            Ok(row)
        })
        .await?;
    Ok((row, secret))
}

/// Delete an endpoint and its delivery log (ADMIN+); a delivery in flight finishes, and its
/// worker stops. Audited as `webhook.delete`.
#[tracing::instrument(skip_all, fields(endpoint = %id))]
pub async fn delete(core: &Core, caller: &Caller, id: Uuid) -> AppResult<WebhookEndpointRow> {
    core.transaction(async |conn| {
        let row = locked(conn, caller, id).await?;
        diesel::delete(webhook_endpoints::table.find(id))
            .execute(conn)
            .await?;
        Trail::of(caller, row.organization_id)
            .deleted(conn, "webhook.delete", &row)
            .await?;
        Ok(row)
    })
    .await
}

/// Move the endpoint's cursor back to `after` (ADMIN+): every event with a greater sequence is
/// delivered again, in order, in new batches. `after` may not pass the cursor
/// (`BAD_USER_INPUT`). Audited as `webhook.replay` with the cursor before and after.
#[tracing::instrument(skip_all, fields(endpoint = %id))]
pub async fn replay(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    after: i64,
) -> AppResult<WebhookEndpointRow> {
    if after < 0 {
        return Err(AppError::bad_input(
            "after",
            "`after` is a sequence: 0 or more",
        ));
    }
    core.transaction(async |conn| {
        let old = locked(conn, caller, id).await?;
        if after > old.cursor {
            return Err(AppError::bad_input(
                "after",
                format!(
                    "a replay moves the cursor back: `after` must be at most the last delivered \
                     sequence ({})",
                    old.cursor
                ),
            ));
        }
        let row: WebhookEndpointRow = diesel::update(webhook_endpoints::table.find(id))
            .set((
                webhook_endpoints::cursor.eq(after),
                webhook_endpoints::batch_id.eq(None::<String>),
                webhook_endpoints::batch_last.eq(None::<i64>),
                webhook_endpoints::attempts.eq(0),
                webhook_endpoints::retrying_since.eq(None::<chrono::DateTime<Utc>>),
                webhook_endpoints::next_attempt_at.eq(diesel::dsl::now),
                webhook_endpoints::version.eq(webhook_endpoints::version + 1),
                webhook_endpoints::updated_at.eq(diesel::dsl::now),
            ))
            .returning(WebhookEndpointRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, row.organization_id)
            .acted(
                conn,
                "webhook.replay",
                &row,
                Some(json!({"lastDeliveredSequence": old.cursor.to_string()})),
                json!({"lastDeliveredSequence": after.to_string()}),
            )
            .await?;
        Ok(row)
    })
    .await
}
