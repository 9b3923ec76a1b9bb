//! API key mutations.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        types::{ApiKey, OrgRole},
    },
    domain::auth::api_keys::{self, NewApiKey},
};

/// A new API key.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// The organization the key acts in (and only there).
    pub organization_id: ID,
    /// Display name, e.g. the integration it serves.
    pub name: String,
    /// ADMIN, ANALYST or VIEWER (never OWNER), at most your own role.
    pub role: OrgRole,
    /// When the key stops working; omit for a key that lives until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key just created: the secret is shown here once and never again.
#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The key.
    pub api_key: ApiKey,
    /// Send it as `Authorization: Bearer <secret>`. Store it now: only its hash is kept.
    pub secret: String,
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Create an API key for an integration (ADMIN+, a signed-in user).
    #[graphql(guard = "Authenticated")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> ApiResult<CreateApiKeyPayload> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        let new = NewApiKey {
            name: input.name,
            role: input.role.into(),
            expires_at: input.expires_at,
        };
        let (row, secret) = api_keys::create(&st.core, &st.caller(), org, new)
            .await
            .api()?;
        Ok(CreateApiKeyPayload {
            api_key: ApiKey(row),
            secret,
        })
    }

    /// Revoke an API key: it is refused from the next request on (ADMIN+). Revoking a revoked
    /// key returns it unchanged.
    #[graphql(guard = "Authenticated")]
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> ApiResult<ApiKey> {
        let st = state(ctx);
        let key = decode(&id, NodeKind::ApiKey, "id")?;
        Ok(ApiKey(
            api_keys::revoke(&st.core, &st.caller(), key).await.api()?,
        ))
    }
}
