//! Webhook mutations: `createWebhookEndpoint`, `updateWebhookEndpoint`, `rotateWebhookSecret`,
//! `deleteWebhookEndpoint`, `replayWebhook` (ADMIN+ of the organization, each audited).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        types::WebhookEndpoint,
    },
    domain::webhooks::service::{self, NewWebhookEndpoint, WebhookChanges},
    error::AppError,
};

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// The organization whose audit events it receives.
    pub organization_id: ID,
    /// Where to POST: `https://` on a public address (at most 2,048 characters, no
    /// credentials).
    pub url: String,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
    /// Only events with one of these actions (1 to 50); omitted or `null`: every action.
    pub actions: Option<Vec<String>>,
    /// Only events on this entity type (e.g. `FinancialModel`); omitted or `null`: every type.
    pub entity_type: Option<String>,
    /// Whether it starts delivering at once (default `true`).
    #[graphql(default = true)]
    pub active: bool,
}

/// An endpoint just created, or whose secret was just rotated: the secret is shown here once.
#[derive(SimpleObject)]
pub struct WebhookSecretPayload {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_…`), for the receiver's Standard Webhooks verifier. Store it
    /// now: it is never shown again.
    pub secret: String,
}

/// Changes to an endpoint: omitted fields stay as they are; `null` clears a nullable one.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint.
    pub id: ID,
    /// A new URL (checked like a new endpoint's).
    pub url: Option<String>,
    /// A new description.
    pub description: MaybeUndefined<String>,
    /// A new action filter (`null`: every action).
    pub actions: MaybeUndefined<Vec<String>>,
    /// A new entity type filter (`null`: every type).
    pub entity_type: MaybeUndefined<String>,
    /// `false` pauses delivery; `true` resumes it, also after the endpoint was marked failing.
    pub active: Option<bool>,
}

/// `Some(None)` for an explicit `null`, `None` when omitted.
fn change<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Create a webhook endpoint (ADMIN+): the organization's audit events committed from now
    /// on (its own `webhook.create` first) are POSTed to it in order. Returns the signing secret,
    /// once. A URL that is not `https://`, carries credentials or resolves to a loopback,
    /// private, link-local or metadata address is `BAD_USER_INPUT`; more than 20 endpoints is
    /// `CONFLICT`. Audited as `webhook.create`.
    #[graphql(guard = "Authenticated")]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> ApiResult<WebhookSecretPayload> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        let (row, secret) = service::create(
            &st.core,
            &st.caller(),
            org,
            NewWebhookEndpoint {
                url: input.url,
                description: input.description,
                actions: input.actions,
                entity_type: input.entity_type,
                active: input.active,
            },
        )
        .await
        .api()?;
        Ok(WebhookSecretPayload {
            endpoint: WebhookEndpoint(row),
            secret,
        })
    }

    /// Change an endpoint's URL, description, filter or state (ADMIN+). `active: true` resumes
    /// a paused or failing endpoint from its cursor. Audited as `webhook.update`.
    #[graphql(guard = "Authenticated")]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> ApiResult<WebhookEndpoint> {
        let st = state(ctx);
        let id = decode(&input.id, NodeKind::WebhookEndpoint, "input.id")?;
        let changes = WebhookChanges {
            url: input.url,
            description: change(input.description),
            actions: change(input.actions),
            entity_type: change(input.entity_type),
            active: input.active,
        };
        let row = service::update(&st.core, &st.caller(), id, changes)
            .await
            .api()?;
        Ok(WebhookEndpoint(row))
    }

    /// Replace an endpoint's signing secret (ADMIN+) and return the new one, once. For 24 hours
    /// batches carry a second signature made with the previous secret, so the receiver can
    /// switch without losing a message. Audited as `webhook.rotate_secret`.
    #[graphql(guard = "Authenticated")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<WebhookSecretPayload> {
        let st = state(ctx);
        let id = decode(&id, NodeKind::WebhookEndpoint, "id")?;
        let (row, secret) = service::rotate_secret(&st.core, &st.caller(), id)
            .await
            .api()?;
        Ok(WebhookSecretPayload {
            endpoint: WebhookEndpoint(row),
            secret,
        })
    }

    /// Delete an endpoint and its delivery log (ADMIN+); returns its ID. Audited as
    /// `webhook.delete`.
    #[graphql(guard = "Authenticated")]
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ID> {
        let st = state(ctx);
        let uuid = decode(&id, NodeKind::WebhookEndpoint, "id")?;
        service::delete(&st.core, &st.caller(), uuid).await.api()?;
        Ok(id)
    }

    /// Move an endpoint's cursor back to `after` (a `sequence`; "0": the whole retained
    /// history) (ADMIN+): every later event is delivered again, in order, in new batches.
    /// `after` beyond `lastDeliveredSequence` is `BAD_USER_INPUT`. Audited as `webhook.replay`.
    #[graphql(guard = "Authenticated")]
    async fn replay_webhook(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        after: String,
    ) -> ApiResult<WebhookEndpoint> {
        let st = state(ctx);
        let id = decode(&endpoint_id, NodeKind::WebhookEndpoint, "endpointId")?;
        let after = after
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                AppError::bad_input("after", "`after` is a sequence: a decimal number")
            })?;
        let row = service::replay(&st.core, &st.caller(), id, after)
            .await
            .api()?;
        Ok(WebhookEndpoint(row))
    }
}
