//! `type WebhookEndpoint`, `type WebhookDelivery`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Organization, User};
use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        relay::{Conn, NodeKind, PageArgs, global_id, paginate_ordered},
    },
    domain::webhooks::{WebhookDeliveryRow, WebhookEndpointRow, loaders::DeliveriesOfEndpoint},
};

/// Where an organization's audit events are POSTed (ADMIN+): in sequence order, in signed
/// JSON batches (Standard Webhooks), at least once. See the README's "Webhooks".
pub struct WebhookEndpoint(pub WebhookEndpointRow);

#[Object]
impl WebhookEndpoint {
    /// The endpoint's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::WebhookEndpoint, &[self.0.id])
    }

    /// The organization whose events it receives.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        Organization::fetch(ctx, self.0.organization_id).await
    }

    /// Where batches are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// What the endpoint is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Only events with one of these actions are sent; `null`: every action.
    async fn actions(&self) -> Option<Vec<String>> {
        self.0.action_list()
    }

    /// Only events on this entity type are sent; `null`: every type.
    async fn entity_type(&self) -> Option<&str> {
        self.0.entity_type.as_deref()
    }

    /// Whether events are delivered. A paused endpoint keeps its cursor: resuming continues
    /// from it, nothing skipped.
    async fn active(&self) -> bool {
        self.0.active
    }

    /// The sequence of the last event delivered (acknowledged with a 2xx, or passed over by the
    /// filter), as a decimal string: the next batch starts after it.
    async fn last_delivered_sequence(&self) -> String {
        self.0.cursor.to_string()
    }

    /// The last failed attempt's reason (`null` once a batch is delivered).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// Since when failed attempts are being retried (`null` while deliveries succeed).
    async fn retrying_since(&self) -> Option<DateTime<Utc>> {
        self.0.retrying_since
    }

    /// When the endpoint was marked failing: its retries lasted the retry horizon, and
    /// delivery is paused until `updateWebhookEndpoint(input: {active: true})` resumes it.
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since
    }

    /// Who created it; `null` for an API key, or when that user is no longer visible to you.
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        User::visible(ctx, self.0.created_by).await
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was last changed through the API.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Delivery attempts, newest first, each with its status code, duration and error (the
    /// latest 200 are kept).
    #[graphql(complexity = "crate::api::complexity::page(first, None, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Conn<WebhookDelivery>> {
        let rows = loader(ctx)
            .load_one(DeliveriesOfEndpoint(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(paginate_ordered(
            rows,
            &PageArgs::forward(first, after),
            // Zero-padded: cursors compare as text in the order of the ids.
            |d| format!("{:020}", d.id),
            WebhookDelivery,
            true,
        )?)
    }
}

/// One attempt to deliver a batch.
pub struct WebhookDelivery(pub WebhookDeliveryRow);

#[Object]
impl WebhookDelivery {
    /// The batch's `Webhook-Id` header: the same for every attempt of one batch.
    async fn webhook_id(&self) -> &str {
        &self.0.webhook_id
    }

    /// When the attempt started.
    async fn attempted_at(&self) -> DateTime<Utc> {
        self.0.attempted_at
    }

    /// The sequence of the batch's first event.
    async fn first_sequence(&self) -> String {
        self.0.first_sequence.to_string()
    }

    /// The batch's last sequence: the cursor once it is delivered (events after the last one
    /// sent that the filter passed over included).
    async fn last_sequence(&self) -> String {
        self.0.last_sequence.to_string()
    }

    /// Events in the batch.
    async fn event_count(&self) -> i32 {
        self.0.event_count
    }

    /// Whether the receiver answered 2xx.
    async fn succeeded(&self) -> bool {
        self.0.error.is_none()
    }

    /// The receiver's HTTP status; `null` when there was no answer (timeout, refused
    /// connection, refused address).
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }

    /// How long the attempt took, in milliseconds.
    async fn duration_ms(&self) -> i32 {
        self.0.duration_ms
    }

    /// Why the attempt failed; `null` for a 2xx.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}
