//! Who is calling: the viewer of a request (or WebSocket connection) and its request metadata.

use std::net::IpAddr;

use uuid::Uuid;

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
}

impl Viewer {
    /// The user behind the request, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Viewer::User { user_id, .. } => Some(*user_id),
            Viewer::Anonymous => None,
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
    /// The calling user, or `Unauthenticated`.
    pub fn require_user(&self) -> crate::error::AppResult<Uuid> {
        self.viewer.user_id().ok_or_else(|| {
            crate::error::AppError::Unauthenticated(
                "sign in first: send `Authorization: Bearer <token>`".into(),
            )
        })
    }
}
