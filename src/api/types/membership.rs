//! `type Membership`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{OrgRole, Organization, User};
use crate::{
    api::{
        errors::ApiResult,
        relay::{NodeKind, global_id},
    },
    domain::organizations::MembershipRow,
};

/// A user's role in an organization.
pub struct Membership(pub MembershipRow);

#[Object]
impl Membership {
    /// The membership's global ID.
    pub async fn id(&self) -> ID {
        global_id(
            NodeKind::Membership,
            &[self.0.organization_id, self.0.user_id],
        )
    }

    /// The member.
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::fetch(ctx, self.0.user_id).await
    }

    /// The organization.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        Organization::fetch(ctx, self.0.organization_id).await
    }

    /// The member's role.
    async fn role(&self) -> OrgRole {
        self.0.role.into()
    }

    /// Who added the member; `null` for the founder, or when that user is no longer visible to you.
    async fn invited_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        User::visible(ctx, self.0.invited_by).await
    }

    /// When the member joined.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
