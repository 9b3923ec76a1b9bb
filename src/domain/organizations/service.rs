//! Organization operations; each is one transaction with its audit event.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::rows::{MembershipRow, OrgRole, OrganizationRow, validate_slug};
use crate::{
    db::schema::{memberships, organizations},
    domain::names::validate_name,
    domain::{
        Core,
        audit::{Trail, Versioned},
        auth::{Caller, cache as credentials},
    },
    error::{AppError, AppResult},
};

/// Lock a live organization's row for the rest of the transaction: member changes of one
/// organization serialise on it, so "the last owner" cannot be removed by two concurrent requests.
pub(crate) async fn lock_organization(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> AppResult<OrganizationRow> {
    organizations::table
        .find(id)
        .filter(organizations::deleted_at.is_null())
        .select(OrganizationRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("organization"))
}

/// The caller's effective role in `organization_id`: [`Viewer::role_in`] over the roles read
/// with the credential; only a superadmin's standing needs the organization's liveness, read
/// inside the transaction. `None`: not a member, or the organization is deleted: nothing of a
/// deleted organization is reachable, whoever asks (its members' rows stay, for the audit trail).
///
/// [`Viewer::role_in`]: crate::domain::auth::Viewer::role_in
pub(crate) async fn caller_role(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    organization_id: Uuid,
) -> AppResult<Option<OrgRole>> {
    let standing = caller.viewer.role_in(organization_id);
    let live = if standing.needs_liveness() {
        live_in(conn, organization_id).await?
    } else {
        true
    };
    Ok(standing.role(live))
}

/// Whether the organization exists and is not deleted.
async fn live_in(conn: &mut AsyncPgConnection, organization_id: Uuid) -> AppResult<bool> {
    Ok(organizations::table
        .find(organization_id)
        .filter(organizations::deleted_at.is_null())
        .select(organizations::id)
        .first::<Uuid>(conn)
        .await
        .optional()?
        .is_some())
}

/// Whether the organization exists and is not deleted (one statement).
pub(crate) async fn is_live(core: &Core, organization_id: Uuid) -> AppResult<bool> {
    let mut conn = core.db.conn().await?;
    live_in(&mut conn, organization_id).await
}

/// Require at least `min` in the organization: non-members get `NotFound` (the organization is
/// invisible to them), members below `min` get `Forbidden`.
pub(crate) async fn require_role(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    organization_id: Uuid,
    min: OrgRole,
) -> AppResult<OrgRole> {
    match caller_role(conn, caller, organization_id).await? {
        None => Err(AppError::NotFound("organization")),
        Some(role) if role < min => Err(AppError::Forbidden(format!(
            "this requires the {min} role in the organization"
        ))),
        Some(role) => Ok(role),
    }
}

#[derive(Insertable)]
#[diesel(table_name = organizations)]
struct NewOrganization<'a> {
    name: &'a str,
    slug: &'a str,
    settings: &'a Value,
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
struct NewMembership {
    organization_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
    invited_by: Option<Uuid>,
}

/// Create an organization; the caller becomes its OWNER.
#[tracing::instrument(skip_all)]
pub async fn create(
    core: &Core,
    caller: &Caller,
    name: &str,
    slug: &str,
    settings: Option<Value>,
) -> AppResult<OrganizationRow> {
    let user_id = caller.require_user()?;
    let name = validate_name(name, "input.name")?;
    let slug = validate_slug(slug, "input.slug")?;
    let settings = settings.unwrap_or_else(|| json!({}));
    crate::domain::limits::settings(&settings, "input.settings")?;
    if !settings.is_object() {
        return Err(AppError::bad_input(
            "input.settings",
            "settings must be a JSON object",
        ));
    }
    credentials::transaction(core, async |conn| {
        let org: OrganizationRow = diesel::insert_into(organizations::table)
            .values(NewOrganization {
                name: &name,
                slug: &slug,
                settings: &settings,
            })
            .returning(OrganizationRow::as_returning())
            .get_result(conn)
            .await?;
        diesel::insert_into(memberships::table)
            .values(NewMembership {
                organization_id: org.id,
                user_id,
                role: OrgRole::Owner,
                invited_by: None,
            })
            .execute(conn)
            .await?;
        Trail::of(caller, org.id)
            .created(conn, "organization.create", &org)
            .await?;
        Ok(org)
    })
    .await
}

/// Changes to an organization; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChanges {
    /// New name.
    pub name: Option<String>,
    /// New slug (OWNER only: links and integrations use it).
    pub slug: Option<String>,
    /// New settings (replaces the object).
    pub settings: Option<Value>,
}

/// Update an organization at the version the client read (ADMIN+; the slug OWNER).
#[tracing::instrument(skip_all, fields(organization = %id))]
pub async fn update(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    version: i32,
    changes: OrganizationChanges,
) -> AppResult<OrganizationRow> {
    let name = changes
        .name
        .as_deref()
        .map(|n| validate_name(n, "input.name"))
        .transpose()?;
    let slug = changes
        .slug
        .as_deref()
        .map(|s| validate_slug(s, "input.slug"))
        .transpose()?;
    if let Some(settings) = &changes.settings {
        crate::domain::limits::settings(settings, "input.settings")?;
    }
    if changes.settings.as_ref().is_some_and(|s| !s.is_object()) {
        return Err(AppError::bad_input(
            "input.settings",
            "settings must be a JSON object",
        ));
    }
    core.transaction(async |conn| {
        let current = lock_organization(conn, id).await?;
        let role = require_role(conn, caller, id, OrgRole::Admin).await?;
        if slug.as_ref().is_some_and(|s| *s != current.slug) && role < OrgRole::Owner {
            return Err(AppError::Forbidden(
                "only an OWNER can change the slug".into(),
            ));
        }
        current.check_version(version)?;
        let updated: OrganizationRow = diesel::update(organizations::table.find(id))
            .set((
                organizations::name.eq(name.as_deref().unwrap_or(&current.name)),
                organizations::slug.eq(slug.as_deref().unwrap_or(&current.slug)),
                organizations::settings.eq(changes.settings.as_ref().unwrap_or(&current.settings)),
                organizations::version.eq(organizations::version + 1),
            ))
            .returning(OrganizationRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, id)
            .updated(conn, "organization.update", &current, &updated)
            .await?;
        Ok(updated)
    })
    .await
}

/// Soft-delete an organization (OWNER). Its slug becomes free again.
#[tracing::instrument(skip_all, fields(organization = %id))]
pub async fn delete(core: &Core, caller: &Caller, id: Uuid) -> AppResult<bool> {
    credentials::transaction(core, async |conn| {
        let current = lock_organization(conn, id).await?;
        require_role(conn, caller, id, OrgRole::Owner).await?;
        diesel::update(organizations::table.find(id))
            .set(organizations::deleted_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        Trail::of(caller, id)
            .deleted(conn, "organization.delete", &current)
            .await?;
        Ok(true)
    })
    .await
}

/// Insert a membership (used by `addMember` and the demo seed).
pub(crate) async fn insert_membership(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
    invited_by: Option<Uuid>,
) -> AppResult<MembershipRow> {
    Ok(diesel::insert_into(memberships::table)
        .values(NewMembership {
            organization_id,
            user_id,
            role,
            invited_by,
        })
        .returning(MembershipRow::as_returning())
        .get_result(conn)
        .await?)
}
