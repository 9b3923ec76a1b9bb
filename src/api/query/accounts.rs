//! `me`.

use async_graphql::{Context, Object};

use crate::api::{
    context::{loader, state},
    errors::ApiResult,
    types::User,
};
use crate::domain::loader::UserById;

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user; `null` when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = state(ctx).caller().viewer.user_id() else {
            return Ok(None);
        };
        Ok(loader(ctx).load_one(UserById(id)).await?.map(User))
    }
}
