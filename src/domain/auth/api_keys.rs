//! API keys: integration credentials scoped to one organization with one role (never OWNER).
//! The secret (`fvk_` + 256 random bits) is shown once; only its SHA-256 is stored.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    cache::{self as credentials, Credential},
    sessions::{new_token, token_hash},
    viewer::{Caller, Viewer},
};
use crate::{
    db::schema::{api_keys, organizations},
    domain::{
        Core,
        audit::{Audited, Trail},
        loader::{LoadError, PgLoader, group, loader_keys},
        organizations::{OrgRole, service::require_role},
    },
    error::{AppError, AppResult},
};

/// Prefix of API key secrets, so a leaked key is recognisable (and told apart from sessions).
pub const API_KEY_PREFIX: &str = "fvk_";

/// How many characters of the secret are kept as its `prefix`, for humans to tell keys apart:
/// `fvk_` and 8 characters (48 bits) — too few to help guess the rest.
const SHOWN_PREFIX_LEN: usize = 12;

/// An API key, without its hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKeyRow {
    /// Primary key.
    pub id: Uuid,
    /// The only organization the key can act in.
    pub organization_id: Uuid,
    /// Display name.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// The key's role (never OWNER).
    pub role: OrgRole,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last authenticated request (flushed from memory every ~30 s).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Audited for ApiKeyRow {
    const ENTITY: &'static str = "ApiKey";
    const NOUN: &'static str = "API key";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    /// The prefix, never the secret's hash: history is readable by every ADMIN.
    fn audit_values(&self) -> Value {
        json!({
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role.as_str(),
            "expiresAt": self
                .expires_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        })
    }
}

/// A new key's settings.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Display name.
    pub name: String,
    /// Role in the organization (ADMIN, ANALYST or VIEWER).
    pub role: OrgRole,
    /// Optional expiry, in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
struct InsertApiKey<'a> {
    organization_id: Uuid,
    name: &'a str,
    prefix: &'a str,
    key_hash: &'a [u8],
    role: OrgRole,
    created_by: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
}

/// Create a key in an organization (ADMIN+, a signed-in user: keys cannot mint keys, or a leaked
/// key could outlive its own revocation). Returns the row and the secret, which is not stored.
#[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
pub async fn create(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    input: NewApiKey,
) -> AppResult<(ApiKeyRow, String)> {
    // Checked before anything else: keys cannot mint keys (see `members::require_person`).
    let user_id = caller.require_user()?;
    let name = crate::domain::names::validate_name(&input.name, "input.name")?;
    if input.role == OrgRole::Owner {
        return Err(AppError::bad_input(
            "input.role",
            "an API key cannot be OWNER: use ADMIN, ANALYST or VIEWER",
        ));
    }
    if input.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::bad_input(
            "input.expiresAt",
            "the expiry must be in the future",
        ));
    }
    let (secret, hash) = new_token(API_KEY_PREFIX);
    let prefix: String = secret.chars().take(SHOWN_PREFIX_LEN).collect();
    let row = core
        .transaction(async |conn| {
            let own = require_role(conn, caller, organization_id, OrgRole::Admin).await?;
            if input.role > own {
                return Err(AppError::Forbidden(
                    "you cannot create a key with a role above your own".into(),
                ));
            }
            let row: ApiKeyRow = diesel::insert_into(api_keys::table)
                .values(InsertApiKey {
                    organization_id,
                    name: &name,
                    prefix: &prefix,
                    key_hash: &hash,
                    role: input.role,
                    created_by: Some(user_id),
                    expires_at: input.expires_at,
                })
                .returning(ApiKeyRow::as_returning())
                .get_result(conn)
                .await?;
            Trail::of(caller, organization_id)
                .created(conn, "api_key.create", &row)
                .await?;
            Ok(row)
        })
        .await?;
    Ok((row, secret))
}

/// Revoke a key (ADMIN+ of its organization). Idempotent: revoking a revoked key returns it
/// unchanged and writes no second event.
#[tracing::instrument(skip_all, fields(api_key = %id))]
pub async fn revoke(core: &Core, caller: &Caller, id: Uuid) -> AppResult<ApiKeyRow> {
    // Keys are managed by people, as members are (`members::require_person`).
    crate::domain::organizations::members::require_person(caller)?;
    credentials::transaction(core, async |conn| {
        let current: ApiKeyRow = api_keys::table
            .find(id)
            .select(ApiKeyRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("API key"))?;
        require_role(conn, caller, current.organization_id, OrgRole::Admin)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => AppError::NotFound("API key"),
                other => other,
            })?;
        if current.revoked_at.is_some() {
            return Ok(current);
        }
        let revoked: ApiKeyRow = diesel::update(api_keys::table.find(id))
            .set(api_keys::revoked_at.eq(diesel::dsl::now))
            .returning(ApiKeyRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, current.organization_id)
            .deleted(conn, "api_key.revoke", &current)
            .await?;
        Ok(revoked)
    })
    .await
}

/// Resolve an API key secret to its viewer: one statement, none when the caller cache knows it
/// (`auth::cache`), and no write (use is noted in memory, on hits too, see [`KeyUsage`]). Unknown, revoked and expired keys, and keys of deleted organizations, are
/// all `Unauthenticated` with the same message.
#[tracing::instrument(skip_all)]
pub async fn authenticate(core: &Core, secret: &str) -> AppResult<Viewer> {
    let invalid = || AppError::Unauthenticated("the API key is invalid, expired or revoked".into());
    if !secret.starts_with(API_KEY_PREFIX) {
        return Err(invalid());
    }
    let hash = token_hash(secret);
    let viewer = core
        .caller_cache
        .resolve(&hash, lookup(core, KeyLookup::Hash(hash.clone())))
        .await?
        .ok_or_else(invalid)?;
    if let Some(key_id) = viewer.api_key_id() {
        core.api_key_usage.touch(key_id, Utc::now());
    }
    Ok(viewer)
}

/// The viewer of a key by id, read again (a long-lived connection re-checking its credential):
/// `None` once the key no longer works. One statement, never cached.
#[tracing::instrument(skip_all, fields(key_id = %key_id))]
pub async fn viewer_of_key(core: &Core, key_id: Uuid) -> AppResult<Option<Viewer>> {
    Ok(lookup(core, KeyLookup::Id(key_id))
        .await?
        .map(|found| found.viewer))
}

enum KeyLookup {
    Hash(Vec<u8>),
    Id(Uuid),
}

/// A key that works now (not revoked, not expired, of a live organization) as a viewer, with
/// its expiry (a cached caller never outlives it).
async fn lookup(core: &Core, key: KeyLookup) -> AppResult<Option<Credential>> {
    let mut query = api_keys::table
        .inner_join(organizations::table)
        .filter(api_keys::revoked_at.is_null())
        .filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(diesel::dsl::now)),
        )
        .filter(organizations::deleted_at.is_null())
        .select((
            api_keys::id,
            api_keys::organization_id,
            api_keys::role,
            api_keys::expires_at,
        ))
        .into_boxed();
    query = match key {
        KeyLookup::Hash(hash) => query.filter(api_keys::key_hash.eq(hash)),
        KeyLookup::Id(id) => query.filter(api_keys::id.eq(id)),
    };
    let found: Option<(Uuid, Uuid, OrgRole, Option<DateTime<Utc>>)> =
        query.first(&mut core.db.conn().await?).await.optional()?;
    Ok(
        found.map(|(key_id, organization_id, role, expires_at)| Credential {
            viewer: Viewer::ApiKey {
                key_id,
                organization_id,
                role,
            },
            expires_at,
        }),
    )
}

pub use super::usage::{KeyUsage, flush_usage, flush_usage_every};

loader_keys! {
    /// A key by id, revoked or not (audit history names revoked keys too).
    ApiKeyById;
    /// Every key of an organization, revoked ones included, oldest first.
    ApiKeysOfOrganization;
}

impl Loader<ApiKeyById> for PgLoader {
    type Value = ApiKeyRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ApiKeyById", keys = keys.len()))]
    async fn load(&self, keys: &[ApiKeyById]) -> Result<HashMap<ApiKeyById, ApiKeyRow>, LoadError> {
        crate::domain::loader::record_batch("ApiKeyById", keys.len());
        let mut conn = self.db().conn().await?;
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<ApiKeyRow> = api_keys::table
            .filter(api_keys::id.eq_any(ids))
            .select(ApiKeyRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|r| (ApiKeyById(r.id), r)).collect())
    }
}

impl Loader<ApiKeysOfOrganization> for PgLoader {
    type Value = Vec<ApiKeyRow>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "ApiKeysOfOrganization", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ApiKeysOfOrganization],
    ) -> Result<HashMap<ApiKeysOfOrganization, Vec<ApiKeyRow>>, LoadError> {
        crate::domain::loader::record_batch("ApiKeysOfOrganization", keys.len());
        let mut conn = self.db().conn().await?;
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<ApiKeyRow> = api_keys::table
            .filter(api_keys::organization_id.eq_any(ids))
            .order((api_keys::created_at, api_keys::id))
            .select(ApiKeyRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| {
            ApiKeysOfOrganization(r.organization_id)
        }))
    }
}
