//! `union Actor`.

use async_graphql::Union;

use super::{ApiKey, User};

/// Who did something: a person or an integration's API key.
#[derive(Union)]
pub enum Actor {
    /// A signed-in user.
    User(User),
    /// An API key.
    ApiKey(ApiKey),
}
