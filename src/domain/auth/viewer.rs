//! Who is calling: the viewer of a request (or WebSocket connection) and its request metadata.

use std::net::IpAddr;

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

    /// Whether no credentials were presented.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Viewer::Anonymous)
    }

    /// An API key's role in `organization_id`: `Some(Some(role))` in its own organization,
    /// `Some(None)` in any other; `None` when the viewer is not an API key (ask the memberships).
    pub fn api_key_role(&self, organization_id: Uuid) -> Option<Option<OrgRole>> {
        match self {
            Viewer::ApiKey {
                organization_id: own,
                role,
                ..
            } => Some((*own == organization_id).then_some(*role)),
            _ => None,
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
