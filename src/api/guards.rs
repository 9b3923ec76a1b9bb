//! Authorization as a mechanism: async-graphql guards that resolve the caller's role in an
//! object's organization through the per-request memberships DataLoader.
//!
//! Two async-graphql 7 traps shape this file. A field-level guard *replaces* a type-level one, so
//! no type-level guards are used: visibility of whole objects is decided where they are loaded
//! (`visible_*`), and guards only gate fields and operations. And guards must hold on fields
//! reached through an interface (`node(id) { ... on User { email } }`): the tests check every
//! guarded field both ways.

use async_graphql::{Context, Guard, ID};
use uuid::Uuid;

use super::{
    context::{loader, state},
    errors::ApiError,
    relay::{NodeKind, decode},
};
use crate::{
    domain::{
        auth::Viewer,
        loader::{OrganizationById, OrganizationsOfUser, UserById},
        modelling::loaders::{ModelById, ScenarioById},
        organizations::OrgRole,
    },
    error::AppError,
};

/// The caller's effective role in an organization ([`Viewer::role_in`], the domain's one rule,
/// over the roles read with the credential): no statement, except that a superadmin's OWNER
/// needs the organization to be live, which the request's loader knows (usually primed by the
/// object that led here). `None` for non-members and organizations that do not exist.
pub async fn viewer_role(
    ctx: &Context<'_>,
    organization_id: Uuid,
) -> Result<Option<OrgRole>, ApiError> {
    let standing = state(ctx).caller().viewer.role_in(organization_id);
    let live = if standing.needs_liveness() {
        loader(ctx)
            .load_one(OrganizationById(organization_id))
            .await?
            .is_some()
    } else {
        true
    };
    Ok(standing.role(live))
}

/// Whether the caller may see the organization at all (member or superadmin).
pub async fn can_see_organization(
    ctx: &Context<'_>,
    organization_id: Uuid,
) -> Result<bool, ApiError> {
    Ok(viewer_role(ctx, organization_id).await?.is_some())
}

/// The caller's standing towards a user ([`Viewer::standing_towards`]): their memberships come
/// from the request's loader, the caller's roles from the credential.
async fn standing_towards(ctx: &Context<'_>, user_id: Uuid) -> Result<Option<OrgRole>, ApiError> {
    let viewer = &state(ctx).caller().viewer;
    if viewer.is_anonymous() {
        return Ok(None);
    }
    if viewer.is_superadmin() || viewer.user_id() == Some(user_id) {
        return Ok(Some(OrgRole::Owner));
    }
    let theirs = loader(ctx)
        .load_one(OrganizationsOfUser(user_id))
        .await?
        .unwrap_or_default();
    Ok(viewer.standing_towards(user_id, theirs))
}

/// Whether the caller may see the user: self, a member of a shared organization (for an API key:
/// a member of its organization), or superadmin. To anyone else the user does not exist.
pub async fn can_see_user(ctx: &Context<'_>, user_id: Uuid) -> Result<bool, ApiError> {
    Ok(standing_towards(ctx, user_id).await?.is_some())
}

/// A user the caller may see ([`can_see_user`]). The user is loaded first: that load brings the
/// user's organizations along, so the check that follows costs no statement.
pub async fn visible_user(
    ctx: &Context<'_>,
    user_id: Uuid,
) -> Result<Option<crate::domain::auth::users::UserRow>, ApiError> {
    match loader(ctx).load_one(UserById(user_id)).await? {
        Some(user) if can_see_user(ctx, user_id).await? => Ok(Some(user)),
        _ => Ok(None),
    }
}

/// Where a guard finds the organization whose role it checks.
#[derive(Debug, Clone)]
enum Scope {
    /// Known id (fields of loaded objects).
    Organization(Uuid),
    /// An organization's global ID from the operation's input (`field` names it).
    OrganizationInput { id: ID, field: &'static str },
}

/// Requires at least `min` in an organization. Non-members get `NOT_FOUND` (the organization is
/// invisible to them), members below `min` get `FORBIDDEN`, anonymous callers `UNAUTHENTICATED`.
/// Mutations have no such guard: their domain operation checks the role once, inside its
/// transaction ([`crate::domain::auth::Viewer::role_in`]).
pub struct OrgRoleGuard {
    min: OrgRole,
    scope: Scope,
}

impl OrgRoleGuard {
    /// Guard a field of an object of organization `organization_id`.
    pub fn org(min: OrgRole, organization_id: Uuid) -> Self {
        Self {
            min,
            scope: Scope::Organization(organization_id),
        }
    }

    /// Guard an operation whose input names the organization by global ID.
    pub fn org_input(min: OrgRole, id: &ID, field: &'static str) -> Self {
        Self {
            min,
            scope: Scope::OrganizationInput {
                id: id.clone(),
                field,
            },
        }
    }

    /// The organization the scope points at.
    fn organization(&self) -> Result<Uuid, ApiError> {
        Ok(match &self.scope {
            Scope::Organization(id) => *id,
            Scope::OrganizationInput { id, field } => decode(id, NodeKind::Organization, field)?,
        })
    }
}

impl Guard for OrgRoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if state(ctx).caller().viewer.is_anonymous() {
            return Err(ApiError::from(AppError::Unauthenticated(
                "sign in first: send `Authorization: Bearer <token>`".into(),
            ))
            .into());
        }
        let role = viewer_role(ctx, self.organization()?).await?;
        match role {
            None => Err(ApiError::from(AppError::NotFound("organization")).into()),
            Some(role) if role < self.min => Err(ApiError::from(AppError::Forbidden(format!(
                "this requires the {} role in the organization",
                self.min
            )))
            .into()),
            Some(_) => Ok(()),
        }
    }
}

/// Requires a signed-in caller.
pub struct SignedIn;

impl Guard for SignedIn {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        state(ctx)
            .caller()
            .require_user()
            .map(|_| ())
            .map_err(|e| ApiError::from(e).into())
    }
}

/// Guards a user's private fields (`email`, `lastLoginAt`): the user themself, an ADMIN+ of an
/// organization the user belongs to, or a superadmin.
pub struct UserPrivateGuard {
    user_id: Uuid,
}

impl UserPrivateGuard {
    /// Guard the private fields of `user_id`.
    pub fn new(user_id: Uuid) -> Self {
        Self { user_id }
    }
}

impl Guard for UserPrivateGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if state(ctx).signed_in.get() == Some(&self.user_id)
            || standing_towards(ctx, self.user_id).await? >= Some(OrgRole::Admin)
        {
            return Ok(());
        }
        Err(ApiError::from(AppError::Forbidden(
            "only the user, an ADMIN of a shared organization or a superadmin can see this".into(),
        ))
        .into())
    }
}

/// Whether the caller may learn account-level flags of `user_id` (`isSuperadmin`): the user
/// themself (also right after signing in during this request) or a superadmin.
pub fn is_self_or_superadmin(ctx: &Context<'_>, user_id: Uuid) -> bool {
    let st = state(ctx);
    st.caller().viewer.user_id() == Some(user_id)
        || st.signed_in.get() == Some(&user_id)
        || st.caller().viewer.is_superadmin()
}

/// Refuses API keys (`FORBIDDEN`): account operations (`register`, `login`) belong to people.
/// FORBIDDEN rather than UNAUTHENTICATED because the key itself is valid: an integration told
/// "unauthenticated" would rotate a key that works.
pub struct NotApiKey;

impl Guard for NotApiKey {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if matches!(state(ctx).caller().viewer, Viewer::ApiKey { .. }) {
            return Err(ApiError::from(AppError::Forbidden(
                "API keys cannot sign in or register: account operations need a person".into(),
            ))
            .into());
        }
        Ok(())
    }
}

/// Whether the caller may read the audit history of `organization_id`: ADMIN+ there; platform
/// events (no organization) only superadmins.
pub async fn can_read_audit(
    ctx: &Context<'_>,
    organization_id: Option<Uuid>,
) -> Result<bool, ApiError> {
    Ok(match organization_id {
        Some(org) => viewer_role(ctx, org)
            .await?
            .is_some_and(|role| role >= OrgRole::Admin),
        None => state(ctx).caller().viewer.is_superadmin(),
    })
}

/// Guards an audit event's private fields (`oldValues`, `newValues`, `ipAddress`, `userAgent`):
/// ADMIN+ of its organization, superadmins for platform events. The event itself is already
/// invisible to anyone else; the guard keeps the fields private wherever an event is reached.
pub struct AuditPrivateGuard {
    organization_id: Option<Uuid>,
}

impl AuditPrivateGuard {
    /// Guard the private fields of an event of `organization_id`.
    pub fn new(organization_id: Option<Uuid>) -> Self {
        Self { organization_id }
    }
}

impl Guard for AuditPrivateGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if can_read_audit(ctx, self.organization_id).await? {
            return Ok(());
        }
        Err(ApiError::from(AppError::Forbidden(
            "only an ADMIN of the organization can see this".into(),
        ))
        .into())
    }
}

/// A model the caller may see (member of its organization, or superadmin).
pub async fn visible_model(
    ctx: &Context<'_>,
    model_id: Uuid,
) -> Result<Option<crate::domain::modelling::ModelRow>, ApiError> {
    match loader(ctx).load_one(ModelById(model_id)).await? {
        Some(model) if can_see_organization(ctx, model.organization_id).await? => Ok(Some(model)),
        _ => Ok(None),
    }
}

/// A scenario the caller may see (through its model).
pub async fn visible_scenario(
    ctx: &Context<'_>,
    scenario_id: Uuid,
) -> Result<Option<crate::domain::modelling::scenarios::ScenarioRow>, ApiError> {
    match loader(ctx).load_one(ScenarioById(scenario_id)).await? {
        Some(s) if visible_model(ctx, s.model_id).await?.is_some() => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// Requires a signed-in caller (a session or an API key). Anonymous callers reach only `login`,
/// `register` and the schema (API.md): an organization-scoped read is `UNAUTHENTICATED` for them,
/// not a `null` that reads as "does not exist".
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if state(ctx).caller().viewer.is_anonymous() {
            return Err(ApiError::from(AppError::Unauthenticated(
                "sign in first: send `Authorization: Bearer <token>`".into(),
            ))
            .into());
        }
        Ok(())
    }
}
