//! `register`, `login`, `logout`, `logoutEverywhere`, `changePassword`, and erasure:
//! `deleteMyAccount`, `anonymizeUser`.

use async_graphql::{Context, ID, InputObject, Object};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::{NotApiKey, SignedIn},
        relay::{NodeKind, decode},
        types::{AuthPayload, User},
    },
    domain::auth::{
        accounts::{self, Registration},
        personal_data,
    },
};

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Email address (unique, case-insensitive).
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// Name shown to other members.
    pub display_name: String,
}

/// A password change.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password in use now.
    pub current_password: String,
    /// The new password (at least 8 characters).
    pub new_password: String,
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Create an account and sign in (when registration is enabled on this server).
    #[graphql(guard = "NotApiKey")]
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> ApiResult<AuthPayload> {
        let st = state(ctx);
        let registration = Registration {
            email: input.email,
            password: input.password,
            display_name: input.display_name,
        };
        let (user, session) = accounts::register(&st.core, &st.caller(), registration)
            .await
            .api()?;
        Ok(AuthPayload::signed_in(st, user, session))
    }

    /// Sign in. Failures say only "invalid email or password"; after 10 failures in 15 minutes
    /// an account is locked for the rest of the window (`RATE_LIMITED`).
    #[graphql(guard = "NotApiKey")]
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> ApiResult<AuthPayload> {
        let st = state(ctx);
        let (user, session) = accounts::login(&st.core, &st.caller(), &email, &password)
            .await
            .api()?;
        Ok(AuthPayload::signed_in(st, user, session))
    }

    /// Revoke the session of the token used for this request.
    #[graphql(guard = "SignedIn")]
    async fn logout(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let st = state(ctx);
        accounts::logout(&st.core, &st.caller()).await.api()
    }

    /// Revoke every session of yours, this one included; returns how many were revoked.
    #[graphql(guard = "SignedIn")]
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        let st = state(ctx);
        accounts::logout_everywhere(&st.core, &st.caller())
            .await
            .api()
    }

    /// Change your password; every other session of yours is revoked.
    #[graphql(guard = "SignedIn")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> ApiResult<bool> {
        let st = state(ctx);
        accounts::change_password(
            &st.core,
            &st.caller(),
            &input.current_password,
            &input.new_password,
        )
        .await
        .api()
    }

    /// Erase your account: email, display name, timezone and locale are replaced by a pseudonym,
    /// the password is removed (the account can never sign in again), every session is revoked
    /// and every membership ends. Audit events keep your id. `CONFLICT` while you are the last
    /// OWNER of an organization; a wrong password counts as a failed sign-in.
    #[graphql(guard = "SignedIn")]
    async fn delete_my_account(&self, ctx: &Context<'_>, password: String) -> ApiResult<bool> {
        let st = state(ctx);
        personal_data::delete_my_account(&st.core, &st.caller(), &password)
            .await
            .api()
    }

    /// Erase someone else's account as `deleteMyAccount` does (superadmins only; no password).
    #[graphql(guard = "SignedIn")]
    async fn anonymize_user(&self, ctx: &Context<'_>, user_id: ID) -> ApiResult<User> {
        let st = state(ctx);
        let user = decode(&user_id, NodeKind::User, "userId")?;
        let row = personal_data::anonymize_user(&st.core, &st.caller(), user)
            .await
            .api()?;
        Ok(User(row))
    }
}
