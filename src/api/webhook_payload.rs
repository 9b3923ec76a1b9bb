//! How an audit event looks in a webhook payload: the fields of `type AuditEvent` as the
//! subscription sends them (global IDs, sequences as decimal strings, hex hashes), every one
//! selected, with the actor as `{__typename, id}`, plus `organizationId` and `sequence`. The
//! delivery workers (`domain::webhooks::delivery`) are given this shape by the application.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    relay::{NodeKind, global_id, sequence_id},
    types::audit_event::entity_global_id,
};
use crate::domain::{audit::history::AuditEventRow, webhooks::PayloadShape};

/// The payload shape of `Subscription.auditEvents`.
pub struct EventShape;

impl PayloadShape for EventShape {
    fn organization_id(&self, id: Uuid) -> String {
        global_id(NodeKind::Organization, &[id]).0
    }

    fn event(&self, row: &AuditEventRow) -> Value {
        let actor = match (row.actor_api_key_id, row.actor_user_id) {
            (Some(key), _) => {
                json!({"__typename": "ApiKey", "id": global_id(NodeKind::ApiKey, &[key]).0})
            }
            (None, Some(user)) => {
                json!({"__typename": "User", "id": global_id(NodeKind::User, &[user]).0})
            }
            (None, None) => Value::Null,
        };
        json!({
            "id": sequence_id(NodeKind::AuditEvent, row.id).0,
            "sequence": row.id.to_string(),
            "organizationId": row.organization_id.map(|org| self.organization_id(org)),
            "action": row.action,
            "entityType": row.entity_type,
            "entityId": entity_global_id(row).map(|id| id.0),
            "actor": actor,
            "oldValues": row.old_values,
            "newValues": row.new_values,
            "ipAddress": row.ip_address.map(|ip| ip.addr().to_string()),
            "userAgent": row.user_agent,
            "requestId": row.request_id,
            "hash": hex::encode(&row.hash),
            "prevHash": row.prev_hash.as_ref().map(hex::encode),
            "createdAt": row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        })
    }
}
