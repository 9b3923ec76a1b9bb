//! Account operations: register, login (rate limited), logout, password change. Each is one
//! transaction together with its audit event.

use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    cache as credentials,
    password::{MAX_PASSWORD_LEN, PasswordHasher},
    sessions::{self, OpenedSession},
    throttle,
    users::{UserRow, validate_email},
    viewer::{Caller, Viewer},
};
use crate::{
    db::schema::{sessions as sessions_t, users},
    domain::{
        Core,
        audit::{AuditEntry, record},
        limits::{self, MAX_DISPLAY_NAME_LEN, MAX_EMAIL_LEN},
    },
    error::{AppError, AppResult},
};

pub use super::throttle::{LOCKOUT_WINDOW_MINUTES, SignInLimits};

/// Write an account's event on the platform's trail (accounts belong to no organization).
async fn account_event(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    action: &'static str,
    user_id: Uuid,
    new_values: Option<Value>,
) -> AppResult<()> {
    // The account acts: a registration's or a sign-in's caller is still anonymous (or someone
    // else, signed in on the same client), and every other account event is its own.
    let mut entry = AuditEntry::new(None, action, "User", Some(user_id)).by_user(user_id);
    entry.new_values = new_values;
    record(conn, caller, entry).await.map(drop)
}

/// Which of a user's live sessions to revoke.
#[derive(Clone, Copy)]
enum Sessions {
    /// This one (a logout).
    One(Uuid),
    /// Every one (logout everywhere).
    All,
    /// Every one but this (a password change keeps the session that made it).
    AllBut(Uuid),
}

/// Revoke some of a user's live sessions; returns how many.
async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    which: Sessions,
) -> AppResult<usize> {
    let live = sessions_t::table
        .filter(sessions_t::user_id.eq(user_id))
        .filter(sessions_t::revoked_at.is_null())
        .into_boxed();
    let chosen = match which {
        Sessions::One(id) => live.filter(sessions_t::id.eq(id)),
        Sessions::All => live,
        Sessions::AllBut(id) => live.filter(sessions_t::id.ne(id)),
    };
    Ok(diesel::update(
        sessions_t::table.filter(sessions_t::id.eq_any(chosen.select(sessions_t::id))),
    )
    .set(sessions_t::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?)
}

/// The one message of every failed login, whatever failed: nothing tells which emails exist.
const LOGIN_FAILED: &str = "invalid email or password";

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    email: &'a str,
    password_hash: &'a str,
    display_name: &'a str,
    is_superadmin: bool,
}

fn validate_display_name(raw: &str, field: &str) -> AppResult<String> {
    let name = limits::text(raw, field, usize::MAX)?.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_LEN {
        return Err(AppError::bad_input(
            field,
            format!("the display name must have 1 to {MAX_DISPLAY_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// A new account's details.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Email (unique, case-insensitive).
    pub email: String,
    /// Plain password; hashed before anything is stored.
    pub password: String,
    /// Display name.
    pub display_name: String,
}

/// Create an account and sign it in.
#[tracing::instrument(skip_all)]
pub async fn register(
    core: &Core,
    caller: &Caller,
    input: Registration,
) -> AppResult<(UserRow, OpenedSession)> {
    if !core.settings.registration {
        return Err(AppError::Forbidden(
            "registration is disabled on this server".into(),
        ));
    }
    let email = validate_email(&input.email, "input.email")?;
    let display_name = validate_display_name(&input.display_name, "input.displayName")?;
    PasswordHasher::validate_new(&input.password, "input.password")?;
    let bucket = caller.meta.ip.map(limits::address_bucket);
    // Registrations from one address queue here and in the transaction's advisory lock, so the
    // count, the hash and the insert happen one at a time: a batch of aliased `register`s
    // cannot all pass the count before any is written.
    let _gate = match bucket {
        Some(bucket) => Some(
            core.attempt_gate
                .enter(&throttle::register_key(bucket))
                .await,
        ),
        None => None,
    };
    core.transaction(async |conn| {
        throttle::check_register(conn, bucket, core.settings.register_per_address_per_hour).await?;
        let password_hash = core.hasher.hash(&input.password).await?;
        let user: UserRow = diesel::insert_into(users::table)
            .values(NewUser {
                email: &email,
                password_hash: &password_hash,
                display_name: &display_name,
                is_superadmin: false,
            })
            .returning(UserRow::as_returning())
            .get_result(conn)
            .await?;
        let session = sessions::open(conn, core, user.id, &caller.meta).await?;
        // Ids only: personal data never enters the hashed trail (erasure keeps it valid).
        account_event(conn, caller, "user.register", user.id, None).await?;
        Ok((user, session))
    })
    .await
}

/// Create an account from the command line (no session).
#[tracing::instrument(skip_all)]
pub async fn create_user(
    core: &Core,
    email: &str,
    display_name: &str,
    password: &str,
    is_superadmin: bool,
) -> AppResult<UserRow> {
    let email = validate_email(email, "email")?;
    let display_name = validate_display_name(display_name, "display-name")?;
    PasswordHasher::validate_new(password, "password")?;
    let password_hash = core.hasher.hash(password).await?;
    let caller = Caller {
        viewer: Viewer::Anonymous,
        meta: Default::default(),
    };
    core.transaction(async |conn| {
        let user: UserRow = diesel::insert_into(users::table)
            .values(NewUser {
                email: &email,
                password_hash: &password_hash,
                display_name: &display_name,
                is_superadmin,
            })
            .returning(UserRow::as_returning())
            .get_result(conn)
            .await?;
        let values = json!({"isSuperadmin": is_superadmin, "via": "cli"});
        record(
            conn,
            &caller,
            AuditEntry::new(None, "user.register", "User", Some(user.id)).with_new(values),
        )
        .await?;
        Ok(user)
    })
    .await
}

/// How an attempt inside the serialised transaction ended: failures are committed (their audit
/// row is what the limit counts) and reported after the commit.
type Attempt<T> = Result<T, AppError>;

/// Check a sign-in's inputs before anything else: a NUL or a few KB of email would otherwise
/// reach PostgreSQL (which refuses NUL, and an index row cannot hold the key).
fn sign_in_inputs(email: &str, password: &str) -> AppResult<String> {
    limits::text(email, "email", MAX_EMAIL_LEN)?;
    limits::text(password, "password", MAX_PASSWORD_LEN)?;
    Ok(email.trim().to_lowercase())
}

/// Sign in. Failures (unknown email, wrong password, inactive account) are indistinguishable in
/// message and timing, and each writes an `auth.login_failed` event; the rate limit counts those
/// events (so it holds across server instances), and attempts on one account are serialised
/// (`throttle`) so that parallel attempts cannot all pass the count.
#[tracing::instrument(skip_all)]
pub async fn login(
    core: &Core,
    caller: &Caller,
    email: &str,
    password: &str,
) -> AppResult<(UserRow, OpenedSession)> {
    let email_key = sign_in_inputs(email, password)?;
    let _gate = core
        .attempt_gate
        .enter(&throttle::account_key(&email_key))
        .await;
    // The outer `?` reports a failed transaction; the inner result is the committed attempt's.
    core.transaction(
        async |conn| -> AppResult<Attempt<(UserRow, OpenedSession)>> {
            throttle::check_sign_in(conn, &email_key, caller.meta.ip, core.settings.sign_in)
                .await?;
            let found: Option<(UserRow, String)> = users::table
                .filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                        .bind::<Text, _>(&email_key),
                )
                .filter(users::deleted_at.is_null())
                .select((UserRow::as_select(), users::password_hash))
                .first(conn)
                .await
                .optional()?;
            let verified = core
                .hasher
                .verify(password, found.as_ref().map(|(_, hash)| hash.as_str()))
                .await?;
            match found {
                Some((user, _)) if verified && user.is_active => {
                    let session = sessions::open(conn, core, user.id, &caller.meta).await?;
                    let user: UserRow = diesel::update(users::table.find(user.id))
                        .set(users::last_login_at.eq(diesel::dsl::now))
                        .returning(UserRow::as_returning())
                        .get_result(conn)
                        .await?;
                    account_event(conn, caller, "auth.login", user.id, None).await?;
                    Ok(Ok((user, session)))
                }
                other => {
                    let user_id = other.map(|(user, _)| user.id);
                    throttle::record_failure(conn, caller, &email_key, user_id, None).await?;
                    Ok(Err(AppError::Unauthenticated(LOGIN_FAILED.into())))
                }
            }
        },
    )
    .await?
}

/// Revoke the caller's current session.
#[tracing::instrument(skip_all)]
pub async fn logout(core: &Core, caller: &Caller) -> AppResult<bool> {
    let (user_id, session_id) = caller.require_session()?;
    credentials::transaction(core, async |conn| {
        let revoked = revoke_sessions(conn, user_id, Sessions::One(session_id)).await?;
        account_event(conn, caller, "auth.logout", user_id, None).await?;
        Ok(revoked == 1)
    })
    .await
}

/// Revoke every session of the caller, the current one included; returns how many.
#[tracing::instrument(skip_all)]
pub async fn logout_everywhere(core: &Core, caller: &Caller) -> AppResult<i32> {
    let user_id = caller.require_user()?;
    credentials::transaction(core, async |conn| {
        let revoked = revoke_sessions(conn, user_id, Sessions::All).await?;
        let values = json!({"sessionsRevoked": revoked});
        account_event(
            conn,
            caller,
            "auth.logout_everywhere",
            user_id,
            Some(values),
        )
        .await?;
        Ok(i32::try_from(revoked).unwrap_or(i32::MAX))
    })
    .await
}

/// Change the caller's password; every other session is revoked (whoever else held one loses it).
#[tracing::instrument(skip_all)]
pub async fn change_password(
    core: &Core,
    caller: &Caller,
    current: &str,
    new: &str,
) -> AppResult<bool> {
    let (user_id, session_id) = caller.require_session()?;
    limits::text(current, "input.currentPassword", MAX_PASSWORD_LEN)?;
    PasswordHasher::validate_new(new, "input.newPassword")?;
    let mut conn = core.db.conn().await?;
    let email: String = users::table
        .find(user_id)
        .select(users::email)
        .first(&mut conn)
        .await?;
    let email_key = email.trim().to_lowercase();
    // A wrong current password is a failed sign-in of this account: the same gate, lock, count
    // and audit row as `login`, or a stolen session could guess the password without limit.
    drop(conn);
    let _gate = core
        .attempt_gate
        .enter(&throttle::account_key(&email_key))
        .await;
    // The outer `?` reports a failed transaction; the inner result is the committed attempt's.
    credentials::transaction(core, async |conn| -> AppResult<Attempt<bool>> {
        throttle::check_sign_in(conn, &email_key, caller.meta.ip, core.settings.sign_in).await?;
        let stored: String = users::table
            .find(user_id)
            .select(users::password_hash)
            .first(conn)
            .await?;
        if !core.hasher.verify(current, Some(&stored)).await? {
            throttle::record_failure(
                conn,
                caller,
                &email_key,
                Some(user_id),
                Some("changePassword"),
            )
            .await?;
            return Ok(Err(AppError::bad_input(
                "input.currentPassword",
                "the current password is wrong",
            )));
        }
        let new_hash = core.hasher.hash(new).await?;
        diesel::update(users::table.find(user_id))
            .set(users::password_hash.eq(&new_hash))
            .execute(conn)
            .await?;
        let revoked = revoke_sessions(conn, user_id, Sessions::AllBut(session_id)).await?;
        let values = json!({"otherSessionsRevoked": revoked});
        account_event(conn, caller, "user.password_change", user_id, Some(values)).await?;
        Ok(Ok(true))
    })
    .await?
}

/// Look a user up by email among non-deleted accounts (for `addMember`).
#[tracing::instrument(skip_all)]
pub async fn find_user_id_by_email(
    conn: &mut diesel_async::AsyncPgConnection,
    email: &str,
) -> AppResult<Option<Uuid>> {
    Ok(users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                .bind::<Text, _>(email.trim().to_lowercase()),
        )
        .filter(users::deleted_at.is_null())
        .select(users::id)
        .first(conn)
        .await
        .optional()?)
}
