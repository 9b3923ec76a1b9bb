//! Appending an event to its chain: [`record`] runs inside the mutation's own transaction.
//! Services reach it through [`Trail`](super::Trail), which builds the entry from the row.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ipnet::IpNet;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::chain::{canonical_json, chain_hash, chain_lock_key};
use crate::{db::schema::audit_events, domain::auth::viewer::Caller, error::AppResult};

/// What happened, to which entity; the actor and request metadata come from the [`Caller`].
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The tenant; `None` for platform events (accounts, logins).
    pub organization_id: Option<Uuid>,
    /// `<entity>.<verb>`, e.g. `member.role_change`.
    pub action: &'static str,
    /// e.g. `Organization`.
    pub entity_type: &'static str,
    /// The entity's id.
    pub entity_id: Option<Uuid>,
    /// Fields before the change (only those that changed).
    pub old_values: Option<Value>,
    /// Fields after the change (only those that changed).
    pub new_values: Option<Value>,
    /// The acting user when it is not the caller's viewer (a login acts as the user it signs in).
    pub actor_user_id: Option<Uuid>,
}

impl AuditEntry {
    /// An entry with no values yet.
    pub fn new(
        organization_id: Option<Uuid>,
        action: &'static str,
        entity_type: &'static str,
        entity_id: Option<Uuid>,
    ) -> Self {
        Self {
            organization_id,
            action,
            entity_type,
            entity_id,
            old_values: None,
            new_values: None,
            actor_user_id: None,
        }
    }

    /// Attribute the event to `user_id` (sign-ins, registrations: the caller was anonymous).
    #[must_use]
    pub fn by_user(mut self, user_id: Uuid) -> Self {
        self.actor_user_id = Some(user_id);
        self
    }

    /// Set the values after the change (creations).
    #[must_use]
    pub fn with_new(mut self, new_values: Value) -> Self {
        self.new_values = Some(new_values);
        self
    }

    /// Set the values before the change (deletions).
    #[must_use]
    pub fn with_old(mut self, old_values: Value) -> Self {
        self.old_values = Some(old_values);
        self
    }

    /// Keep only the fields that differ between `old` and `new` (objects); both sides recorded.
    #[must_use]
    pub fn with_change(mut self, old: Value, new: Value) -> Self {
        let (old, new) = diff(old, new);
        self.old_values = Some(old);
        self.new_values = Some(new);
        self
    }
}

/// The fields of two JSON objects that differ, as `(old, new)`.
pub fn diff(old: Value, new: Value) -> (Value, Value) {
    match (old, new) {
        (Value::Object(old), Value::Object(mut new)) => {
            let mut old_out = Map::new();
            let mut new_out = Map::new();
            for (key, old_value) in old {
                let new_value = new.remove(&key).unwrap_or(Value::Null);
                if old_value != new_value {
                    old_out.insert(key.clone(), old_value);
                    new_out.insert(key, new_value);
                }
            }
            for (key, new_value) in new {
                old_out.insert(key.clone(), Value::Null);
                new_out.insert(key, new_value);
            }
            (Value::Object(old_out), Value::Object(new_out))
        }
        (old, new) => (old, new),
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditEventRow<'a> {
    organization_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: &'a str,
    entity_type: &'a str,
    entity_id: Option<Uuid>,
    old_values: Option<Value>,
    new_values: Option<Value>,
    ip_address: Option<IpNet>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    created_at: DateTime<Utc>,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
}

/// The JSON whose canonical form is hashed into the chain: every stored column but the id and
/// the hashes themselves.
#[allow(clippy::too_many_arguments)]
pub fn hashed_document(
    organization_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: &str,
    entity_type: &str,
    entity_id: Option<Uuid>,
    old_values: Option<&Value>,
    new_values: Option<&Value>,
    ip_address: Option<&IpNet>,
    user_agent: Option<&str>,
    request_id: Option<&str>,
    created_at: DateTime<Utc>,
) -> Value {
    json!({
        "organization_id": organization_id,
        "actor_user_id": actor_user_id,
        "actor_api_key_id": actor_api_key_id,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "old_values": old_values,
        "new_values": new_values,
        "ip_address": ip_address.map(|ip| ip.addr().to_string()),
        "user_agent": user_agent,
        "request_id": request_id,
        "created_at": created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// The last hash of a chain (`fv_audit_chain_head`).
#[derive(diesel::QueryableByName)]
struct ChainHead {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    hash: Option<Vec<u8>>,
}

/// Append one event to its organization's chain, inside the caller's transaction. Returns the
/// event's sequence. Must run in a transaction: the chain lock is transaction-scoped.
#[tracing::instrument(skip_all, fields(action = entry.action))]
pub async fn record(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    entry: AuditEntry,
) -> AppResult<i64> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(chain_lock_key(entry.organization_id))
        .execute(conn)
        .await?;
    // Through a SECURITY DEFINER function: the chain's head whatever rows the caller may read
    // (row-level security), so that a member recording their own leaving chains correctly.
    let prev_hash = diesel::sql_query("SELECT fv_audit_chain_head($1) AS hash")
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(entry.organization_id)
        .get_result::<ChainHead>(conn)
        .await?
        .hash;

    // PostgreSQL keeps microseconds: hash what will be read back.
    let now = Utc::now();
    let created_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    let actor_user_id = entry.actor_user_id.or_else(|| caller.viewer.user_id());
    // An explicit user actor (a sign-in) is never an API key's act.
    let actor_api_key_id = if entry.actor_user_id.is_some() {
        None
    } else {
        caller.viewer.api_key_id()
    };
    let ip_address = caller.meta.ip.map(IpNet::from);
    let document = hashed_document(
        entry.organization_id,
        actor_user_id,
        actor_api_key_id,
        entry.action,
        entry.entity_type,
        entry.entity_id,
        entry.old_values.as_ref(),
        entry.new_values.as_ref(),
        ip_address.as_ref(),
        caller.meta.user_agent.as_deref(),
        caller.meta.request_id.as_deref(),
        created_at,
    );
    let hash = chain_hash(prev_hash.as_deref(), &canonical_json(&document));
    let row = NewAuditEventRow {
        organization_id: entry.organization_id,
        actor_user_id,
        actor_api_key_id,
        action: entry.action,
        entity_type: entry.entity_type,
        entity_id: entry.entity_id,
        old_values: entry.old_values,
        new_values: entry.new_values,
        ip_address,
        user_agent: caller.meta.user_agent.as_deref(),
        request_id: caller.meta.request_id.as_deref(),
        created_at,
        prev_hash,
        hash,
    };
    let id = diesel::insert_into(audit_events::table)
        .values(&row)
        .returning(audit_events::id)
        .get_result(conn)
        .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_keeps_only_changed_fields() {
        let (old, new) = diff(
            json!({"name": "a", "slug": "s", "x": 1}),
            json!({"name": "b", "slug": "s", "y": 2}),
        );
        assert_eq!(old, json!({"name": "a", "x": 1, "y": null}));
        assert_eq!(new, json!({"name": "b", "x": null, "y": 2}));
    }
}
