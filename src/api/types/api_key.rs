//! `type ApiKey`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{OrgRole, Organization, User};
use crate::{
    api::{
        errors::ApiResult,
        relay::{NodeKind, global_id},
    },
    domain::auth::api_keys::ApiKeyRow,
};

/// An integration's credential: acts with one role in one organization. Its secret was shown
/// once, when it was created; only its `prefix` is kept for humans.
pub struct ApiKey(pub ApiKeyRow);

#[Object]
impl ApiKey {
    /// The key's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::ApiKey, &[self.0.id])
    }

    /// Display name, e.g. the integration it serves.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The first characters of the secret (`fvk_…`), to tell keys apart.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// The key's role in its organization (never OWNER).
    async fn role(&self) -> OrgRole {
        self.0.role.into()
    }

    /// The only organization the key can act in.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        Organization::fetch(ctx, self.0.organization_id).await
    }

    /// Who created the key; `null` when that user is no longer visible to you.
    async fn created_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        User::visible(ctx, self.0.created_by).await
    }

    /// When the key stops working; `null`: never.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Its latest authenticated request (recorded about every 30 seconds, not per request).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    /// When it was revoked; a revoked key is refused with 401.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }

    /// Creation time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
