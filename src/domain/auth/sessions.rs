//! Session tokens: random 256-bit values; only their SHA-256 is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use diesel::{
    dsl::sql,
    prelude::*,
    sql_types::{Array, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ipnet::IpNet;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    cache::Credential,
    viewer::{RequestMeta, Roles, Viewer},
};
use crate::{
    db::schema::{sessions, users},
    domain::{Core, organizations::OrgRole},
    error::{AppError, AppResult},
};

/// Prefix of session tokens (API keys use `fvk_`), so a leaked token is recognisable.
pub const SESSION_TOKEN_PREFIX: &str = "fvs_";

/// A new random token with the given prefix and its SHA-256.
pub fn new_token(prefix: &str) -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a presented token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
struct NewSession<'a> {
    user_id: Uuid,
    token_hash: &'a [u8],
    expires_at: DateTime<Utc>,
    ip_address: Option<IpNet>,
    user_agent: Option<&'a str>,
}

/// A session just opened: the token is returned to the client once and never stored.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// The bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Open a session for `user_id` inside the caller's transaction.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn open(
    conn: &mut AsyncPgConnection,
    core: &Core,
    user_id: Uuid,
    meta: &RequestMeta,
) -> AppResult<OpenedSession> {
    let (token, hash) = new_token(SESSION_TOKEN_PREFIX);
    let ttl = chrono::Duration::from_std(core.settings.session_ttl).map_err(AppError::internal)?;
    let expires_at = Utc::now() + ttl;
    diesel::insert_into(sessions::table)
        .values(NewSession {
            user_id,
            token_hash: &hash,
            expires_at,
            ip_address: meta.ip.map(IpNet::from),
            user_agent: meta.user_agent.as_deref(),
        })
        .execute(conn)
        .await?;
    Ok(OpenedSession { token, expires_at })
}

/// Resolve a bearer token to its viewer: one statement, none when the caller cache knows it
/// (`auth::cache`), and no write (use is noted in memory and flushed to `last_used_at` with the
/// API keys', `usage::flush_usage`, on hits too). Unknown, expired or revoked tokens and inactive
/// or deleted users are all `Unauthenticated`, with the same message.
#[tracing::instrument(skip_all)]
pub async fn authenticate(core: &Core, token: &str) -> AppResult<Viewer> {
    if !token.starts_with(SESSION_TOKEN_PREFIX) {
        return Err(invalid());
    }
    let hash = token_hash(token);
    let viewer = core
        .caller_cache
        .resolve(&hash, lookup(core, SessionKey::TokenHash(hash.clone())))
        .await?
        .ok_or_else(invalid)?;
    if let Viewer::User { session_id, .. } = viewer {
        core.session_usage.touch(session_id, Utc::now());
    }
    Ok(viewer)
}

/// The viewer of a session by id, read again (a long-lived connection re-checking its
/// credential and roles): `None` once the session no longer works. One statement, never cached.
#[tracing::instrument(skip_all, fields(session_id = %session_id))]
pub async fn viewer_of_session(core: &Core, session_id: Uuid) -> AppResult<Option<Viewer>> {
    Ok(lookup(core, SessionKey::Id(session_id))
        .await?
        .map(|found| found.viewer))
}

fn invalid() -> AppError {
    AppError::Unauthenticated("the token is invalid or expired: sign in again".into())
}

/// What the lookup reads: session id and expiry, user id, superadmin, `organization role` pairs.
type FoundSession = (Uuid, DateTime<Utc>, Uuid, bool, Vec<String>);

enum SessionKey {
    TokenHash(Vec<u8>),
    Id(Uuid),
}

/// A session that works now (not revoked, not expired, not idle too long, of an active user)
/// with its user's roles in live organizations: the caller and their roles in one statement,
/// with the session's expiry (a cached caller never outlives it).
async fn lookup(core: &Core, key: SessionKey) -> AppResult<Option<Credential>> {
    let mut query = sessions::table
        .inner_join(users::table)
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .filter(users::is_active.eq(true))
        .filter(users::deleted_at.is_null())
        .select((
            sessions::id,
            sessions::expires_at,
            users::id,
            users::is_superadmin,
            // `organization role` pairs as text: one array keeps each pair together.
            sql::<Array<Text>>(
                "coalesce((SELECT array_agg(m.organization_id::text || ' ' || m.role) \
                 FROM memberships m JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.user_id = users.id AND o.deleted_at IS NULL), '{}')",
            ),
        ))
        .into_boxed();
    query = match key {
        SessionKey::TokenHash(hash) => query.filter(sessions::token_hash.eq(hash)),
        SessionKey::Id(id) => query.filter(sessions::id.eq(id)),
    };
    if let Some(idle) = core.settings.session_idle {
        // `last_used_at` is flushed from memory every ~30 s, which is noise against an idle
        // limit counted in hours; a session never used counts from its creation. A cached
        // caller was checked here when it was filled: the cache's TTL bounds the drift.
        let idle = chrono::Duration::from_std(idle).map_err(AppError::internal)?;
        let cutoff = Utc::now() - idle;
        query = query.filter(
            sessions::last_used_at.gt(cutoff).or(sessions::last_used_at
                .is_null()
                .and(sessions::created_at.gt(cutoff))),
        );
    }
    let found: Option<FoundSession> = query.first(&mut core.db.conn().await?).await.optional()?;
    let Some((session_id, expires_at, user_id, is_superadmin, pairs)) = found else {
        return Ok(None);
    };
    let roles = pairs
        .iter()
        .map(|pair| {
            let (org, role) = pair.split_once(' ')?;
            Some((Uuid::parse_str(org).ok()?, role.parse::<OrgRole>().ok()?))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("unreadable membership roles")))?;
    Ok(Some(Credential {
        viewer: Viewer::User {
            user_id,
            session_id,
            is_superadmin,
            roles: Roles::new(roles),
        },
        expires_at: Some(expires_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_random_and_hashed() {
        let (a, ha) = new_token(SESSION_TOKEN_PREFIX);
        let (b, _) = new_token(SESSION_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("fvs_"));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a[4..]).unwrap().len(), 32);
        assert_eq!(ha, token_hash(&a));
        assert_eq!(ha.len(), 32);
    }
}
