//! `type AuthPayload`.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::User;

/// A new session: send `token` as `Authorization: Bearer <token>`.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// The bearer token; shown once, only its hash is stored.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: User,
}
