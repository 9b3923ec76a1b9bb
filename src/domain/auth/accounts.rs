//! Account operations: register, login (rate limited), logout, password change. Each is one
//! transaction together with its audit event.

use diesel::{
    prelude::*,
    sql_types::{BigInt, Nullable, Text},
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

use super::{
    password::PasswordHasher,
    sessions::{self, OpenedSession},
    users::{UserRow, validate_email},
    viewer::{Caller, Viewer},
};
use crate::{
    db::schema::{sessions as sessions_t, users},
    domain::{
        Core,
        audit::{AuditEntry, record},
    },
    error::{AppError, AppResult},
};

/// Failed logins per account allowed in [`LOCKOUT_WINDOW_MINUTES`] before the account is locked.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 10;
/// Failed logins per client address allowed in the window.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 100;
/// The sliding window of the login rate limit.
pub const LOCKOUT_WINDOW_MINUTES: i64 = 15;

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
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input(
            field,
            "the display name must have 1 to 100 characters",
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
    let password_hash = core.hasher.hash(&input.password).await?;
    let mut conn = core.db.conn().await?;
    conn.transaction(async |conn| {
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
        record(
            conn,
            caller,
            AuditEntry::new(None, "user.register", "User", Some(user.id))
                .by_user(user.id)
                .with_new(json!({"email": user.email, "displayName": user.display_name})),
        )
        .await?;
        Ok((user, session))
    })
    .await
}

/// Create an account from the command line (no session).
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
    let mut conn = core.db.conn().await?;
    conn.transaction(async |conn| {
        let user: UserRow = diesel::insert_into(users::table)
            .values(NewUser { email: &email, password_hash: &password_hash, display_name: &display_name, is_superadmin })
            .returning(UserRow::as_returning())
            .get_result(conn)
            .await?;
        record(
            conn,
            &caller,
            AuditEntry::new(None, "user.register", "User", Some(user.id))
                .with_new(json!({"email": user.email, "displayName": user.display_name, "isSuperadmin": is_superadmin, "via": "cli"})),
        )
        .await?;
        Ok(user)
    })
    .await
}

#[derive(QueryableByName)]
struct RecentFailures {
    #[diesel(sql_type = BigInt)]
    by_account: i64,
    #[diesel(sql_type = BigInt)]
    by_address: i64,
}

/// Sign in. Failures (unknown email, wrong password, inactive account) are indistinguishable in
/// message and timing, and each writes an `auth.login_failed` event; the rate limit counts those
/// events, so it holds across server instances.
pub async fn login(
    core: &Core,
    caller: &Caller,
    email: &str,
    password: &str,
) -> AppResult<(UserRow, OpenedSession)> {
    let email_key = email.trim().to_lowercase();
    let ip = caller.meta.ip.map(IpNet::from);
    let mut conn = core.db.conn().await?;

    let failures: RecentFailures = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE new_values->>'email' = $1) AS by_account,
                count(*) FILTER (WHERE ip_address = $2) AS by_address
           FROM audit_events
          WHERE action = 'auth.login_failed'
            AND created_at > now() - make_interval(mins => $3::int)
            AND (new_values->>'email' = $1 OR ip_address = $2)",
    )
    .bind::<Text, _>(&email_key)
    .bind::<Nullable<diesel::sql_types::Inet>, _>(ip)
    .bind::<diesel::sql_types::Integer, _>(LOCKOUT_WINDOW_MINUTES as i32)
    .get_result(&mut conn)
    .await?;
    if failures.by_account >= MAX_FAILURES_PER_ACCOUNT
        || failures.by_address >= MAX_FAILURES_PER_ADDRESS
    {
        return Err(AppError::RateLimited(format!(
            "too many failed sign-in attempts: try again in {LOCKOUT_WINDOW_MINUTES} minutes"
        )));
    }

    let found: Option<(UserRow, String)> = users::table
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("lower(email) = ")
                .bind::<Text, _>(&email_key),
        )
        .filter(users::deleted_at.is_null())
        .select((UserRow::as_select(), users::password_hash))
        .first(&mut conn)
        .await
        .optional()?;
    let verified = core
        .hasher
        .verify(password, found.as_ref().map(|(_, hash)| hash.as_str()))
        .await?;

    match found {
        Some((user, _)) if verified && user.is_active => {
            conn.transaction(async |conn| {
                let session = sessions::open(conn, core, user.id, &caller.meta).await?;
                let user: UserRow = diesel::update(users::table.find(user.id))
                    .set(users::last_login_at.eq(diesel::dsl::now))
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .await?;
                record(
                    conn,
                    caller,
                    AuditEntry::new(None, "auth.login", "User", Some(user.id)).by_user(user.id),
                )
                .await?;
                Ok((user, session))
            })
            .await
        }
        other => {
            let user_id = other.map(|(user, _)| user.id);
            conn.transaction(async |conn| {
                record(
                    conn,
                    caller,
                    AuditEntry::new(None, "auth.login_failed", "User", user_id)
                        .with_new(json!({"email": email_key})),
                )
                .await
            })
            .await?;
            Err(AppError::Unauthenticated(LOGIN_FAILED.into()))
        }
    }
}

/// Revoke the caller's current session.
pub async fn logout(core: &Core, caller: &Caller) -> AppResult<bool> {
    let Viewer::User {
        user_id,
        session_id,
        ..
    } = caller.viewer
    else {
        return Err(AppError::Unauthenticated("not signed in".into()));
    };
    let mut conn = core.db.conn().await?;
    conn.transaction(async |conn| {
        let revoked = diesel::update(
            sessions_t::table
                .find(session_id)
                .filter(sessions_t::revoked_at.is_null()),
        )
        .set(sessions_t::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
        record(
            conn,
            caller,
            AuditEntry::new(None, "auth.logout", "User", Some(user_id)),
        )
        .await?;
        Ok(revoked == 1)
    })
    .await
}

/// Revoke every session of the caller, the current one included; returns how many.
pub async fn logout_everywhere(core: &Core, caller: &Caller) -> AppResult<i32> {
    let user_id = caller.require_user()?;
    let mut conn = core.db.conn().await?;
    conn.transaction(async |conn| {
        let revoked = diesel::update(
            sessions_t::table
                .filter(sessions_t::user_id.eq(user_id))
                .filter(sessions_t::revoked_at.is_null()),
        )
        .set(sessions_t::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
        record(
            conn,
            caller,
            AuditEntry::new(None, "auth.logout_everywhere", "User", Some(user_id))
                .with_new(json!({"sessionsRevoked": revoked})),
        )
        .await?;
        Ok(i32::try_from(revoked).unwrap_or(i32::MAX))
    })
    .await
}

/// Change the caller's password; every other session is revoked (whoever else held one loses it).
pub async fn change_password(
    core: &Core,
    caller: &Caller,
    current: &str,
    new: &str,
) -> AppResult<bool> {
    let Viewer::User {
        user_id,
        session_id,
        ..
    } = caller.viewer
    else {
        return Err(AppError::Unauthenticated("not signed in".into()));
    };
    PasswordHasher::validate_new(new, "input.newPassword")?;
    let mut conn = core.db.conn().await?;
    let stored: String = users::table
        .find(user_id)
        .select(users::password_hash)
        .first(&mut conn)
        .await?;
    if !core.hasher.verify(current, Some(&stored)).await? {
        return Err(AppError::bad_input(
            "input.currentPassword",
            "the current password is wrong",
        ));
    }
    let new_hash = core.hasher.hash(new).await?;
    conn.transaction(async |conn| {
        diesel::update(users::table.find(user_id))
            .set(users::password_hash.eq(&new_hash))
            .execute(conn)
            .await?;
        let revoked = diesel::update(
            sessions_t::table
                .filter(sessions_t::user_id.eq(user_id))
                .filter(sessions_t::id.ne(session_id))
                .filter(sessions_t::revoked_at.is_null()),
        )
        .set(sessions_t::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
        record(
            conn,
            caller,
            AuditEntry::new(None, "user.password_change", "User", Some(user_id))
                .with_new(json!({"otherSessionsRevoked": revoked})),
        )
        .await?;
        Ok(true)
    })
    .await
}

/// Look a user up by email among non-deleted accounts (for `addMember`).
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
