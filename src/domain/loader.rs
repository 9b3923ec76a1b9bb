//! Batched lookups: every by-id lookup and relationship is one `= ANY($1)` statement per batch.
//! The GraphQL face wraps [`PgLoader`] in one `DataLoader` per request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_graphql::dataloader::{HashMapCache, Loader};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{
    db::{
        Db,
        schema::{memberships, organizations, users},
    },
    domain::{
        Core,
        auth::users::UserRow,
        modelling::ModelRow,
        organizations::{MembershipRow, OrganizationRow},
    },
    error::AppError,
};

/// Declare the keys of loaders over uuids: one newtype per question a loader answers, so that one
/// [`PgLoader`] implements `Loader<K>` once per question.
macro_rules! loader_keys {
    ($($(#[$doc:meta])* $name:ident;)+) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub struct $name(pub uuid::Uuid);
        )+
    };
}
pub(crate) use loader_keys;

/// A request's DataLoader over [`PgLoader`], with a cache (enabled for queries).
pub type RequestLoader = async_graphql::dataloader::DataLoader<PgLoader, HashMapCache>;

/// Loader errors must be `Clone` (a batch's error reaches every waiting key).
pub type LoadError = Arc<AppError>;

/// The loader source over the database.
#[derive(Clone)]
pub struct PgLoader {
    db: Db,
    /// Parent rows fetched with a child (a scenario's model and organization), waiting for the
    /// by-id lookup that will ask for them; `None` where rows must not outlive one load (a
    /// WebSocket connection's loader, which serves events for hours).
    primed: Option<Arc<Mutex<Primed>>>,
}

/// Rows a load fetched for the parents it joins.
#[derive(Default)]
pub(crate) struct Primed {
    pub(crate) models: HashMap<Uuid, ModelRow>,
    pub(crate) organizations: HashMap<Uuid, OrganizationRow>,
    pub(crate) user_organizations: HashMap<Uuid, Vec<Uuid>>,
    pub(crate) users: HashMap<Uuid, UserRow>,
    pub(crate) parameters_of_model:
        HashMap<Uuid, Vec<crate::domain::modelling::parameters::ParameterRow>>,
    pub(crate) parameter_values_of_scenario:
        HashMap<Uuid, Vec<crate::domain::modelling::parameters::ParameterValueRow>>,
}

impl PgLoader {
    /// A loader over `db` for one request: a child's load primes the parents it joins.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            primed: Some(Default::default()),
        }
    }

    /// A loader whose every lookup reads the database (no priming): for a long-lived
    /// connection, where a parent primed by one event must not answer a later one.
    pub fn unprimed(db: Db) -> Self {
        Self { db, primed: None }
    }

    /// The database, for the loaders of the domain's modules (never the face's).
    pub(in crate::domain) fn db(&self) -> &Db {
        &self.db
    }

    /// Whether loads may prime other lookups (a request's loader, not a connection's).
    pub(crate) fn is_priming(&self) -> bool {
        self.primed.is_some()
    }

    /// Keep parent rows for the by-id lookups of this request.
    pub(crate) fn prime(&self, f: impl FnOnce(&mut Primed)) {
        if let Some(primed) = &self.primed {
            f(&mut primed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }

    /// The primed rows of `keys`, and the ids still to fetch. Rows stay primed: a lookup of the
    /// same key can be batched again while the first batch is in flight (the DataLoader caches
    /// a value only once its batch completes), and must not cost a second statement.
    pub(crate) fn take_primed<K, V: Clone>(
        &self,
        keys: &[K],
        id: impl Fn(K) -> Uuid,
        pick: impl Fn(&mut Primed) -> &mut HashMap<Uuid, V>,
    ) -> (HashMap<K, V>, Vec<Uuid>)
    where
        K: Copy + std::hash::Hash + Eq,
    {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let mut guard = self
            .primed
            .as_ref()
            .map(|p| p.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for key in keys {
            match guard.as_mut().and_then(|p| pick(p).get(&id(*key)).cloned()) {
                Some(row) => {
                    found.insert(*key, row);
                }
                None => missing.push(id(*key)),
            }
        }
        (found, missing)
    }
}

/// Note one batch of the `loader` lookup (`fv_dataloader_batch_size`): how well requests batch
/// is what keeps their statement count flat, so it is measured per lookup. The label is the key
/// type's name, a fixed set.
#[allow(
    clippy::cast_precision_loss,
    reason = "a histogram holds an f64; a batch is far below 2^53 keys"
)]
pub(crate) fn record_batch(loader: &'static str, keys: usize) {
    metrics::histogram!("fv_dataloader_batch_size", "loader" => loader).record(keys as f64);
}

/// Rows grouped under their keys; every key present (empty when it has no rows).
pub(crate) fn group<K: Copy + Eq + std::hash::Hash, V>(
    keys: &[K],
    rows: Vec<V>,
    key: impl Fn(&V) -> K,
) -> HashMap<K, Vec<V>> {
    let mut out: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for row in rows {
        out.entry(key(&row)).or_default().push(row);
    }
    out
}

loader_keys! {
    /// A live user by id.
    UserById;
    /// A live organization by id.
    OrganizationById;
}

/// A live organization by slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationBySlug(pub String);

loader_keys! {
    /// The live organizations a user belongs to (what deciding whether the caller may see the user
    /// needs); primed by [`UserById`].
    OrganizationsOfUser;
    /// Every membership of a user in live organizations, oldest first.
    MembershipsOfUser;
    /// Every membership of an organization, oldest first.
    MembershipsOfOrganization;
}

fn ids<K: Copy>(keys: &[K], f: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| f(*k)).collect()
}

impl Loader<UserById> for PgLoader {
    type Value = UserRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "UserById", keys = keys.len()))]
    async fn load(&self, keys: &[UserById]) -> Result<HashMap<UserById, UserRow>, LoadError> {
        crate::domain::loader::record_batch("UserById", keys.len());
        let (mut found, missing) = self.take_primed(keys, |k| k.0, |p| &mut p.users);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut conn = self.db.conn().await?;
        // With the user's organizations, which the caller's right to see the user depends on.
        let rows: Vec<(UserRow, Vec<Uuid>)> = users::table
            .filter(users::id.eq_any(missing))
            .filter(users::deleted_at.is_null())
            .select((UserRow::as_select(), organizations_of_user_sql()))
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        self.prime(|p| {
            for (user, organizations) in &rows {
                p.user_organizations.insert(user.id, organizations.clone());
                // A creator is often also an actor: a second batch of the same user is free.
                p.users.insert(user.id, user.clone());
            }
        });
        found.extend(rows.into_iter().map(|(r, _)| (UserById(r.id), r)));
        Ok(found)
    }
}

/// The live organizations of the `users` row in scope, as an array.
fn organizations_of_user_sql()
-> diesel::expression::SqlLiteral<diesel::sql_types::Array<diesel::sql_types::Uuid>> {
    diesel::dsl::sql(
        "coalesce((SELECT array_agg(m.organization_id) FROM memberships m \
         JOIN organizations o ON o.id = m.organization_id \
         WHERE m.user_id = users.id AND o.deleted_at IS NULL), '{}')",
    )
}

impl Loader<OrganizationsOfUser> for PgLoader {
    type Value = Vec<Uuid>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "OrganizationsOfUser", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[OrganizationsOfUser],
    ) -> Result<HashMap<OrganizationsOfUser, Vec<Uuid>>, LoadError> {
        crate::domain::loader::record_batch("OrganizationsOfUser", keys.len());
        let (mut found, missing) = self.take_primed(keys, |k| k.0, |p| &mut p.user_organizations);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut conn = self.db.conn().await?;
        let rows: Vec<(Uuid, Vec<Uuid>)> = users::table
            .filter(users::id.eq_any(missing))
            .select((users::id, organizations_of_user_sql()))
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        found.extend(
            rows.into_iter()
                .map(|(id, orgs)| (OrganizationsOfUser(id), orgs)),
        );
        Ok(found)
    }
}

impl Loader<OrganizationById> for PgLoader {
    type Value = OrganizationRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "OrganizationById", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[OrganizationById],
    ) -> Result<HashMap<OrganizationById, OrganizationRow>, LoadError> {
        crate::domain::loader::record_batch("OrganizationById", keys.len());
        let (mut found, missing) = self.take_primed(keys, |k| k.0, |p| &mut p.organizations);
        if missing.is_empty() {
            return Ok(found);
        }
        let mut conn = self.db.conn().await?;
        let rows: Vec<OrganizationRow> = organizations::table
            .filter(organizations::id.eq_any(missing))
            .filter(organizations::deleted_at.is_null())
            .select(OrganizationRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        found.extend(rows.into_iter().map(|r| (OrganizationById(r.id), r)));
        Ok(found)
    }
}

impl Loader<OrganizationBySlug> for PgLoader {
    type Value = OrganizationRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "OrganizationBySlug", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[OrganizationBySlug],
    ) -> Result<HashMap<OrganizationBySlug, OrganizationRow>, LoadError> {
        crate::domain::loader::record_batch("OrganizationBySlug", keys.len());
        let mut conn = self.db.conn().await?;
        let slugs: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let rows: Vec<OrganizationRow> = organizations::table
            .filter(organizations::slug.eq_any(slugs))
            .filter(organizations::deleted_at.is_null())
            .select(OrganizationRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| (OrganizationBySlug(r.slug.clone()), r))
            .collect())
    }
}

impl Loader<MembershipsOfUser> for PgLoader {
    type Value = Vec<MembershipRow>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "MembershipsOfUser", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[MembershipsOfUser],
    ) -> Result<HashMap<MembershipsOfUser, Vec<MembershipRow>>, LoadError> {
        crate::domain::loader::record_batch("MembershipsOfUser", keys.len());
        let mut conn = self.db.conn().await?;
        let rows: Vec<MembershipRow> = memberships::table
            .inner_join(organizations::table)
            .filter(memberships::user_id.eq_any(ids(keys, |k| k.0)))
            .filter(organizations::deleted_at.is_null())
            .order((memberships::created_at, memberships::organization_id))
            .select(MembershipRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| MembershipsOfUser(r.user_id)))
    }
}

impl Loader<MembershipsOfOrganization> for PgLoader {
    type Value = Vec<MembershipRow>;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "MembershipsOfOrganization", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[MembershipsOfOrganization],
    ) -> Result<HashMap<MembershipsOfOrganization, Vec<MembershipRow>>, LoadError> {
        crate::domain::loader::record_batch("MembershipsOfOrganization", keys.len());
        let mut conn = self.db.conn().await?;
        let rows: Vec<MembershipRow> = memberships::table
            .filter(memberships::organization_id.eq_any(ids(keys, |k| k.0)))
            .order((memberships::created_at, memberships::user_id))
            .select(MembershipRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(group(keys, rows, |r| {
            MembershipsOfOrganization(r.organization_id)
        }))
    }
}

/// Every live organization, oldest first (the superadmin's `organizations`): one statement.
pub async fn all_organizations(core: &Core) -> Result<Vec<OrganizationRow>, AppError> {
    let mut conn = core.db.conn().await?;
    Ok(organizations::table
        .filter(organizations::deleted_at.is_null())
        .order((organizations::created_at, organizations::id))
        .select(OrganizationRow::as_select())
        .load(&mut conn)
        .await?)
}
