//! Who is calling: the viewer of a request (or WebSocket connection) and its request metadata.

use std::{net::IpAddr, sync::Arc};

use uuid::Uuid;

use crate::domain::organizations::OrgRole;

/// The authenticated principal of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No token: only `login`, `register` and the schema are reachable.
    Anonymous,
    /// A user with a session token.
    User {
        /// The user.
        user_id: Uuid,
        /// The session the token belongs to (for `logout`).
        session_id: Uuid,
        /// Platform operator: every permission in every organization.
        is_superadmin: bool,
        /// The user's roles in live organizations, read with the session (same statement).
        roles: Roles,
    },
    /// An integration's API key: its role in its one organization, and nothing else (no user,
    /// no account operations, no other organization).
    ApiKey {
        /// The key.
        key_id: Uuid,
        /// The only organization the key can see.
        organization_id: Uuid,
        /// The key's role there (never OWNER).
        role: OrgRole,
    },
}

impl Viewer {
    /// The user behind the request, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Viewer::User { user_id, .. } => Some(*user_id),
            Viewer::Anonymous | Viewer::ApiKey { .. } => None,
        }
    }

    /// The API key behind the request, if any.
    pub fn api_key_id(&self) -> Option<Uuid> {
        match self {
            Viewer::ApiKey { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }

    /// Whose writes a read must see for the read-your-writes window: the user (any of their
    /// sessions), or the API key.
    pub fn writer_id(&self) -> Option<Uuid> {
        match self {
            Viewer::User { user_id, .. } => Some(*user_id),
            Viewer::ApiKey { key_id, .. } => Some(*key_id),
            Viewer::Anonymous => None,
        }
    }

    /// Whether no credentials were presented.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Viewer::Anonymous)
    }

    /// The caller's role in an organization: the one rule behind guards, visibility and the
    /// domain's services. Superadmins act as OWNER anywhere (of a live organization); an API key
    /// has its role in its own organization and none elsewhere; a user has the role of their
    /// membership; anonymous callers have none.
    pub fn role_in(&self, organization_id: Uuid) -> Standing {
        match self {
            Viewer::Anonymous => Standing::Outsider,
            Viewer::User {
                is_superadmin: true,
                ..
            } => Standing::Superadmin,
            Viewer::User { roles, .. } => roles
                .get(organization_id)
                .map_or(Standing::Outsider, Standing::Role),
            Viewer::ApiKey {
                organization_id: own,
                role,
                ..
            } if *own == organization_id => Standing::Role(*role),
            Viewer::ApiKey { .. } => Standing::Outsider,
        }
    }

    /// The caller's own membership role in an organization, without a superadmin's promotion
    /// (`Organization.viewerRole`); an API key's role in its own organization.
    pub fn membership_role(&self, organization_id: Uuid) -> Option<OrgRole> {
        match self {
            Viewer::User { roles, .. } => roles.get(organization_id),
            _ => self.role_in(organization_id).role(false),
        }
    }

    /// The caller's standing towards a user who belongs to `their_organizations`: OWNER for the
    /// user themself and for superadmins, otherwise the highest role the caller holds in one of
    /// those organizations ([`Viewer::role_in`]); `None` when they share none. The rule behind
    /// both user visibility and a user's private fields.
    pub fn standing_towards(
        &self,
        user_id: Uuid,
        their_organizations: impl IntoIterator<Item = Uuid>,
    ) -> Option<OrgRole> {
        if self.is_superadmin() || self.user_id() == Some(user_id) {
            return Some(OrgRole::Owner);
        }
        // Their organizations are live (memberships are read through live organizations).
        their_organizations
            .into_iter()
            .filter_map(|org| self.role_in(org).role(true))
            .max()
    }

    /// Whether the caller may see a membership in `organization_id` of user `user_id`: the user
    /// themself and superadmins see all of them, anyone else those of organizations they have a
    /// role in.
    pub fn sees_membership_of(&self, user_id: Uuid, organization_id: Uuid) -> bool {
        self.is_superadmin()
            || self.user_id() == Some(user_id)
            || self.role_in(organization_id).role(true).is_some()
    }

    /// Whose rows the database lets this viewer's requests see (row-level security):
    /// superadmins every organization, users their memberships', API keys their one.
    pub fn db_caller(&self) -> crate::db::DbCaller {
        use crate::db::DbCaller;
        match self {
            Viewer::Anonymous => DbCaller::Nobody,
            Viewer::User {
                is_superadmin: true,
                ..
            } => DbCaller::All,
            Viewer::User { user_id, roles, .. } => DbCaller::User(*user_id, roles.organizations()),
            Viewer::ApiKey {
                organization_id, ..
            } => DbCaller::Organization(*organization_id),
        }
    }

    /// Whether the viewer is a platform superadmin.
    pub fn is_superadmin(&self) -> bool {
        matches!(
            self,
            Viewer::User {
                is_superadmin: true,
                ..
            }
        )
    }
}

/// A user's roles in live organizations, as read with their credential: the caller's side of
/// every authorization decision of a request, so deciding costs no statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(Arc<[(Uuid, OrgRole)]>);

impl Roles {
    /// Roles from `(organization, role)` pairs.
    pub fn new(roles: impl IntoIterator<Item = (Uuid, OrgRole)>) -> Self {
        Self(roles.into_iter().collect())
    }

    /// The organizations of these roles.
    pub fn organizations(&self) -> Arc<[Uuid]> {
        self.0
            .iter()
            .map(|(organization, _)| *organization)
            .collect()
    }

    /// The role in `organization_id`, if a member.
    pub fn get(&self, organization_id: Uuid) -> Option<OrgRole> {
        self.0
            .iter()
            .find(|(org, _)| *org == organization_id)
            .map(|(_, role)| *role)
    }
}

/// What the credential alone says about the caller in one organization (see [`Viewer::role_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A member (or an API key of the organization) with this role.
    Role(OrgRole),
    /// A superadmin: OWNER of every organization that exists and is not deleted.
    Superadmin,
    /// Nothing: anonymous, not a member, or an API key of another organization.
    Outsider,
}

impl Standing {
    /// The effective role, given whether the organization is live. Only a superadmin's standing
    /// depends on it: a member's roles are read from live organizations only, and an API key of
    /// a deleted organization no longer authenticates.
    pub fn role(self, organization_live: bool) -> Option<OrgRole> {
        match self {
            Standing::Role(role) => Some(role),
            Standing::Superadmin => organization_live.then_some(OrgRole::Owner),
            Standing::Outsider => None,
        }
    }

    /// Whether only the organization's liveness is left to learn (a superadmin).
    pub fn needs_liveness(self) -> bool {
        self == Standing::Superadmin
    }
}

/// Where a request came from; recorded with its audit events.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request id (`x-request-id`).
    pub request_id: Option<String>,
}

/// A viewer with its request metadata: what every domain operation receives.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub viewer: Viewer,
    /// From where.
    pub meta: RequestMeta,
}

impl Caller {
    /// The calling user and the session they signed in with (session operations: an API key
    /// has no session to end).
    pub fn require_session(&self) -> crate::error::AppResult<(Uuid, Uuid)> {
        match &self.viewer {
            Viewer::User {
                user_id,
                session_id,
                ..
            } => Ok((*user_id, *session_id)),
            _ => Err(crate::error::AppError::Unauthenticated(
                "not signed in".into(),
            )),
        }
    }

    /// The calling user: `Unauthenticated` when anonymous, `Forbidden` for an API key (it is
    /// authenticated, so "sign in" would mislead an integration into rotating a valid key).
    pub fn require_user(&self) -> crate::error::AppResult<Uuid> {
        match &self.viewer {
            Viewer::User { user_id, .. } => Ok(*user_id),
            Viewer::ApiKey { .. } => Err(crate::error::AppError::Forbidden(
                "API keys cannot do this: it needs a signed-in user".into(),
            )),
            Viewer::Anonymous => Err(crate::error::AppError::Unauthenticated(
                "sign in first: send `Authorization: Bearer <token>`".into(),
            )),
        }
    }
}
