//! The `webhook_endpoints` and `webhook_deliveries` rows, and what an endpoint's audit events
//! show (never its secret).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    db::schema::{webhook_deliveries, webhook_endpoints},
    domain::audit::Audited,
};

/// An endpoint as clients see it: everything but its secrets and its lease.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct WebhookEndpointRow {
    /// Primary key.
    pub id: Uuid,
    /// The organization whose audit events it receives.
    pub organization_id: Uuid,
    /// Where batches are POSTed.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// Only these actions (`None`: all).
    pub actions: Option<Vec<Option<String>>>,
    /// Only this entity type (`None`: all).
    pub entity_type: Option<String>,
    /// Whether it receives events (a paused endpoint keeps its cursor).
    pub active: bool,
    /// The last sequence delivered.
    pub cursor: i64,
    /// The Webhook-Id of the batch in flight.
    pub batch_id: Option<String>,
    /// The last sequence of the batch in flight.
    pub batch_last: Option<i64>,
    /// Failed attempts of the batch in flight.
    pub attempts: i32,
    /// The first failure of the current run of failures.
    pub retrying_since: Option<DateTime<Utc>>,
    /// When the next attempt may start.
    pub next_attempt_at: DateTime<Utc>,
    /// When retries passed the horizon: paused until resumed.
    pub failing_since: Option<DateTime<Utc>>,
    /// The last failure's description.
    pub last_error: Option<String>,
    /// Bumped by every change made through the API: a delivery started before one does not
    /// move the cursor after it.
    pub version: i32,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last change through the API.
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpointRow {
    /// The action filter, as a list (`None`: every action).
    pub fn action_list(&self) -> Option<Vec<String>> {
        self.actions
            .as_ref()
            .map(|a| a.iter().flatten().cloned().collect())
    }

    /// Whether an event passes the endpoint's filter.
    pub fn wants(&self, action: &str, entity_type: &str) -> bool {
        let action_ok = self
            .actions
            .as_ref()
            .is_none_or(|list| list.iter().flatten().any(|a| a == action));
        let entity_ok = self.entity_type.as_deref().is_none_or(|e| e == entity_type);
        action_ok && entity_ok
    }
}

impl Audited for WebhookEndpointRow {
    const ENTITY: &'static str = "WebhookEndpoint";
    const NOUN: &'static str = "webhook endpoint";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    /// The settings, never the secret: history is readable by every ADMIN.
    fn audit_values(&self) -> Value {
        json!({
            "url": self.url,
            "description": self.description,
            "actions": self.action_list(),
            "entityType": self.entity_type,
            "active": self.active,
        })
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct WebhookDeliveryRow {
    /// Increasing with time.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Its organization.
    pub organization_id: Uuid,
    /// The batch's `Webhook-Id` (the same for every attempt of one batch).
    pub webhook_id: String,
    /// When the attempt started.
    pub attempted_at: DateTime<Utc>,
    /// The batch's first sequence.
    pub first_sequence: i64,
    /// The batch's last sequence.
    pub last_sequence: i64,
    /// Events in the batch.
    pub event_count: i32,
    /// The receiver's status (`None`: no answer).
    pub status_code: Option<i32>,
    /// How long the attempt took.
    pub duration_ms: i32,
    /// Why it failed (`None`: a 2xx).
    pub error: Option<String>,
}
