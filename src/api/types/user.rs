//! `type User`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Membership, Organization};
use crate::{
    api::{
        context::{loader, state},
        errors::ApiResult,
        guards::{UserPrivateGuard, is_self_or_superadmin},
        relay::{Conn, NodeKind, PageArgs, global_id, paginate, time_key},
    },
    domain::{auth::users::UserRow, loader::MembershipsOfUser},
};

/// A person who can sign in. Visible only to themself, members of an organization they share,
/// and superadmins.
pub struct User(pub UserRow);

impl User {
    /// A user the caller may know (a member's account), through the request's loader.
    pub async fn fetch(ctx: &Context<'_>, id: uuid::Uuid) -> ApiResult<Self> {
        let row = loader(ctx)
            .load_one(crate::domain::loader::UserById(id))
            .await?
            .ok_or(crate::error::AppError::NotFound("user"))?;
        Ok(Self(row))
    }

    /// The user `id` names (a creator, an inviter, an uploader), or `None` when there is none or
    /// the caller may not see them: such references never reveal a user.
    pub async fn visible(ctx: &Context<'_>, id: Option<uuid::Uuid>) -> ApiResult<Option<User>> {
        let Some(id) = id else {
            return Ok(None);
        };
        Ok(crate::api::guards::visible_user(ctx, id).await?.map(User))
    }
}

#[Object]
impl User {
    /// The user's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::User, &[self.0.id])
    }

    /// Visible to the user, ADMINs of an organization they belong to, and superadmins;
    /// `null` with a `FORBIDDEN` error for anyone else.
    #[graphql(guard = "UserPrivateGuard::new(self.0.id)")]
    async fn email(&self) -> Option<&str> {
        Some(&self.0.email)
    }

    /// Name shown to other members.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// Inactive users cannot sign in.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }

    /// Platform operator with every permission in every organization. Disclosed only to the
    /// user themself and to superadmins: anyone else reads `false` (the contract keeps the field
    /// non-null, and a refusal would null the whole user).
    async fn is_superadmin(&self, ctx: &Context<'_>) -> bool {
        self.0.is_superadmin && is_self_or_superadmin(ctx, self.0.id)
    }

    /// IANA time zone, e.g. `Europe/Paris`.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }

    /// BCP 47 locale, e.g. `en`.
    async fn locale(&self) -> &str {
        &self.0.locale
    }

    /// Last successful sign-in; same visibility as `email`.
    #[graphql(guard = "UserPrivateGuard::new(self.0.id)")]
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The user's memberships, oldest first: all of them for the user themself and superadmins,
    /// otherwise only those in organizations the caller belongs to too.
    #[graphql(complexity = "crate::api::complexity::page(first, None, child_complexity)")]
    async fn memberships(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Conn<Membership>> {
        let rows = visible_memberships(ctx, self.0.id).await?;
        Ok(paginate(
            rows,
            &PageArgs::forward(first, after),
            |m| time_key(m.created_at, m.organization_id),
            Membership,
        )?)
    }

    /// The organizations of `memberships`, in the same order and with the same visibility.
    #[graphql(complexity = "crate::api::complexity::page(first, None, child_complexity)")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Conn<Organization>> {
        let rows = visible_memberships(ctx, self.0.id).await?;
        let conn = paginate(
            rows,
            &PageArgs::forward(first, after),
            |m| time_key(m.created_at, m.organization_id),
            |m| m.organization_id,
        )?;
        Organization::load_connection(ctx, conn).await
    }
}

/// The user's memberships the caller may see ([`Viewer::sees_membership_of`]).
///
/// [`Viewer::sees_membership_of`]: crate::domain::auth::Viewer::sees_membership_of
async fn visible_memberships(
    ctx: &Context<'_>,
    user_id: uuid::Uuid,
) -> ApiResult<Vec<crate::domain::organizations::MembershipRow>> {
    let viewer = &state(ctx).caller().viewer;
    if viewer.is_anonymous() {
        return Ok(Vec::new());
    }
    let theirs = loader(ctx)
        .load_one(MembershipsOfUser(user_id))
        .await?
        .unwrap_or_default();
    Ok(theirs
        .into_iter()
        .filter(|t| viewer.sees_membership_of(user_id, t.organization_id))
        .collect())
}
