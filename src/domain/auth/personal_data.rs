//! Personal data: a user's copy of everything stored about them (`exportMyData`), and erasure
//! (`deleteMyAccount`, `anonymizeUser`).
//!
//! Erasure replaces the account's personal fields with a pseudonym instead of deleting the row:
//! audit events keep the actor's id, and the hash chains stay valid because no audited payload
//! carries an email or a display name (events record user ids). The row stays, soft-deleted:
//! references (`created_by`, `invited_by`, `actor_user_id`) keep their id, and the API shows the
//! user as it shows any deleted account (a `null` creator or actor).

use diesel::{
    prelude::*,
    sql_types::{Jsonb, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    cache as credentials, password::MAX_PASSWORD_LEN, throttle, users::UserRow, viewer::Caller,
};
use crate::{
    db::schema::{memberships, sessions, users},
    domain::{
        Core,
        audit::{AuditEntry, Trail, record},
        limits,
        organizations::{MembershipRow, OrgRole, service::lock_organization},
    },
    error::{AppError, AppResult},
};

/// The display name of an erased account.
pub const ERASED_DISPLAY_NAME: &str = "Deleted user";

/// What an erased account's password hash becomes: not a PHC string, so nothing verifies.
const NO_PASSWORD: &str = "!";

#[derive(QueryableByName)]
struct Document {
    #[diesel(sql_type = Jsonb)]
    document: Value,
}

/// Every part of the export, built by PostgreSQL in one statement. Rows are exported whole
/// (`to_jsonb`) minus their secrets, so a column added later is exported without a change here;
/// a new secret column must be subtracted here.
const EXPORT_SQL: &str = r#"
SELECT jsonb_build_object(
  'account', (SELECT to_jsonb(u) - 'password_hash' FROM users u WHERE u.id = $1),
  'sessions', (SELECT coalesce(jsonb_agg(to_jsonb(s) - 'token_hash' ORDER BY s.created_at, s.id), '[]')
                 FROM sessions s WHERE s.user_id = $1),
  'memberships', (SELECT coalesce(jsonb_agg(to_jsonb(m) || jsonb_build_object(
                          'organization_name', o.name, 'organization_slug', o.slug)
                          ORDER BY m.created_at, m.organization_id), '[]')
                    FROM memberships m JOIN organizations o ON o.id = m.organization_id
                   WHERE m.user_id = $1),
  'apiKeys', (SELECT coalesce(jsonb_agg(to_jsonb(k) - 'key_hash' ORDER BY k.created_at, k.id), '[]')
                FROM api_keys k WHERE k.created_by = $1),
  'models', (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.created_at, f.id), '[]')
               FROM financial_models f WHERE f.created_by = $1),
  'scenarios', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.created_at, s.id), '[]')
                  FROM scenarios s WHERE s.created_by = $1),
  'modelFiles', (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.created_at, f.id), '[]')
                   FROM model_files f WHERE f.uploaded_by = $1),
  'reports', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.created_at, r.id), '[]')
                FROM reports r WHERE r.created_by = $1),
  'auditEvents', (SELECT coalesce(jsonb_agg(to_jsonb(a) - 'hash' - 'prev_hash' ORDER BY a.id), '[]')
                    FROM audit_events a WHERE a.actor_user_id = $1)
) AS document
"#;

/// The caller's personal data as one JSON document: the account, sessions (no token hashes),
/// memberships, API keys they created (no key hashes), models, scenarios, files and reports they
/// created, and every audit event they acted. The export
/// itself is audited (`user.data_export`), in the same transaction that reads it.
#[tracing::instrument(skip_all)]
pub async fn export(core: &Core, caller: &Caller) -> AppResult<(UserRow, Value)> {
    let user_id = caller.require_user()?;
    core.transaction(async |conn| {
        let user: UserRow = users::table
            .find(user_id)
            .select(UserRow::as_select())
            .first(conn)
            .await?;
        // The event first: the export lists it among the caller's events.
        record(
            conn,
            caller,
            AuditEntry::new(None, "user.data_export", "User", Some(user_id)),
        )
        .await?;
        let doc: Document = diesel::sql_query(EXPORT_SQL)
            .bind::<SqlUuid, _>(user_id)
            .get_result(conn)
            .await?;
        Ok((user, doc.document))
    })
    .await
}

/// The caller erases their own account after confirming their password. A wrong password is a
/// failed sign-in of the account (the same gate, limit and audit row as `changePassword`).
/// `CONFLICT` while they are the last OWNER of an organization.
#[tracing::instrument(skip_all)]
pub async fn delete_my_account(core: &Core, caller: &Caller, password: &str) -> AppResult<bool> {
    let user_id = caller.require_user()?;
    limits::text(password, "password", MAX_PASSWORD_LEN)?;
    let mut conn = core.db.conn().await?;
    let email: String = users::table
        .find(user_id)
        .select(users::email)
        .first(&mut conn)
        .await?;
    drop(conn);
    let email_key = email.trim().to_lowercase();
    let _gate = core
        .attempt_gate
        .enter(&throttle::account_key(&email_key))
        .await;
    // The outer `?` reports a failed transaction; the inner result is the committed attempt's.
    credentials::transaction(core, async |conn| -> AppResult<AppResult<bool>> {
        throttle::check_sign_in(conn, &email_key, caller.meta.ip, core.settings.sign_in).await?;
        let stored: String = users::table
            .find(user_id)
            .select(users::password_hash)
            .first(conn)
            .await?;
        if !core.hasher.verify(password, Some(&stored)).await? {
            throttle::record_failure(
                conn,
                caller,
                &email_key,
                Some(user_id),
                Some("deleteMyAccount"),
            )
            .await?;
            return Ok(Err(AppError::bad_input(
                "password",
                "the password is wrong",
            )));
        }
        erase(conn, caller, user_id, "deleteMyAccount").await?;
        Ok(Ok(true))
    })
    .await?
}

/// A superadmin erases someone else's account (no password). `CONFLICT` while they are the last
/// OWNER of an organization.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn anonymize_user(core: &Core, caller: &Caller, user_id: Uuid) -> AppResult<UserRow> {
    caller.require_user()?;
    if !caller.viewer.is_superadmin() {
        return Err(AppError::Forbidden(
            "only a superadmin can anonymize a user".into(),
        ));
    }
    credentials::transaction(core, async |conn| {
        erase(conn, caller, user_id, "anonymizeUser").await
    })
    .await
}

/// Inside a credential transaction: end the memberships (each with its `member.remove` event on
/// its organization's chain), revoke the sessions, replace the personal fields and remove the
/// password, then write `user.erase` on the platform's chain. Ids only in every event.
async fn erase(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    user_id: Uuid,
    via: &'static str,
) -> AppResult<UserRow> {
    // The account's row first: concurrent erasures (or a sign-in) of it wait here.
    let user: UserRow = users::table
        .find(user_id)
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("user"))?;
    let held: Vec<MembershipRow> = memberships::table
        .filter(memberships::user_id.eq(user_id))
        .order(memberships::organization_id)
        .select(MembershipRow::as_select())
        .load(conn)
        .await?;
    for membership in &held {
        // Locked in id order (the same order everywhere), so two erasures cannot deadlock.
        let live = match lock_organization(conn, membership.organization_id).await {
            Ok(_) => true,
            Err(AppError::NotFound(_)) => false,
            Err(other) => return Err(other),
        };
        if live && membership.role == OrgRole::Owner {
            let owners: i64 = memberships::table
                .filter(memberships::organization_id.eq(membership.organization_id))
                .filter(memberships::role.eq(OrgRole::Owner))
                .count()
                .get_result(conn)
                .await?;
            if owners <= 1 {
                return Err(AppError::Conflict(
                    "the account is the last OWNER of an organization: transfer ownership first"
                        .into(),
                ));
            }
        }
        diesel::delete(memberships::table.find((membership.organization_id, membership.user_id)))
            .execute(conn)
            .await?;
        Trail::of(caller, membership.organization_id)
            .deleted(conn, "member.remove", membership)
            .await?;
    }
    let revoked = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    let erased: UserRow = diesel::update(users::table.find(user.id))
        .set((
            users::email.eq(format!("deleted-{}@invalid", user.id)),
            users::display_name.eq(ERASED_DISPLAY_NAME),
            users::timezone.eq("UTC"),
            users::locale.eq("en"),
            users::preferences.eq(json!({})),
            users::password_hash.eq(NO_PASSWORD),
            users::is_active.eq(false),
            users::deleted_at.eq(diesel::dsl::now),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await?;
    let values = json!({
        "via": via,
        "sessionsRevoked": revoked,
        "membershipsEnded": held.len(),
    });
    record(
        conn,
        caller,
        AuditEntry::new(None, "user.erase", "User", Some(user.id)).with_new(values),
    )
    .await?;
    Ok(erased)
}
