//! `me`, `exportMyData`.

use async_graphql::{Context, Object};

use crate::api::{
    context::{loader, state},
    errors::{ApiResult, IntoApi},
    guards::SignedIn,
    types::{PersonalDataExport, User},
};
use crate::domain::auth::personal_data;
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

    /// Everything stored about you, as one JSON document (signed-in users; not API keys). The
    /// export is recorded in the audit trail.
    #[graphql(guard = "SignedIn")]
    async fn export_my_data(&self, ctx: &Context<'_>) -> ApiResult<PersonalDataExport> {
        let st = state(ctx);
        let (user, data) = personal_data::export(&st.core, &st.caller()).await.api()?;
        Ok(PersonalDataExport {
            user: User(user),
            generated_at: chrono::Utc::now(),
            data: async_graphql::Json(data),
        })
    }
}
