//! `type AuthPayload`.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::User;
use crate::{
    api::context::RequestState, domain::auth::sessions::OpenedSession, domain::auth::users::UserRow,
};

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

impl AuthPayload {
    /// The payload of a new session. The request notes who signed in, so that the payload may
    /// show the user's private fields although the request carried no token (the first sign-in
    /// of a request is the one noted).
    pub fn signed_in(st: &RequestState, user: UserRow, session: OpenedSession) -> Self {
        let _ = st.signed_in.set(user.id);
        st.core.remember_writes_of(user.id);
        Self {
            token: session.token,
            expires_at: session.expires_at,
            user: User(user),
        }
    }
}
