//! Membership operations. Every one locks the organization's row first, so the "at least one
//! OWNER" invariant holds under concurrent requests.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::{
    rows::{MembershipRow, OrgRole, OrganizationRow},
    service::{insert_membership, lock_organization, require_role},
};
use crate::{
    db::schema::memberships,
    domain::{
        Core,
        audit::Trail,
        auth::{Caller, accounts::find_user_id_by_email, cache as credentials},
    },
    error::{AppError, AppResult},
};

async fn membership_for_update(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    user_id: Uuid,
) -> AppResult<MembershipRow> {
    memberships::table
        .find((organization_id, user_id))
        .select(MembershipRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("member"))
}

async fn owner_count(conn: &mut AsyncPgConnection, organization_id: Uuid) -> AppResult<i64> {
    Ok(memberships::table
        .filter(memberships::organization_id.eq(organization_id))
        .filter(memberships::role.eq(OrgRole::Owner))
        .count()
        .get_result(conn)
        .await?)
}

/// Members are managed by people only: an API key that could add members (or change roles)
/// could make a human ADMIN of its choosing, who would then mint keys — a leaked key would
/// outlive its own revocation. `FORBIDDEN` whatever the key's role.
pub(crate) fn require_person(caller: &Caller) -> AppResult<()> {
    caller.require_user().map(drop)
}

const LAST_OWNER: &str = "an organization must keep at least one OWNER: transfer ownership first";

/// Add the account with `email` to the organization (ADMIN+; only an OWNER grants OWNER).
#[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
pub async fn add(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    email: &str,
    role: OrgRole,
) -> AppResult<MembershipRow> {
    require_person(caller)?;
    crate::domain::limits::text(email, "input.email", crate::domain::limits::MAX_EMAIL_LEN)?;
    credentials::transaction(core, async |conn| {
        lock_organization(conn, organization_id).await?;
        let actor = require_role(conn, caller, organization_id, OrgRole::Admin).await?;
        if role == OrgRole::Owner && actor < OrgRole::Owner {
            return Err(AppError::Forbidden(
                "only an OWNER can grant the OWNER role".into(),
            ));
        }
        let user_id = find_user_id_by_email(conn, email).await?.ok_or_else(|| {
            AppError::bad_input(
                "input.email",
                "no account has this email: ask them to register first",
            )
        })?;
        let membership = insert_membership(
            conn,
            organization_id,
            user_id,
            role,
            caller.viewer.user_id(),
        )
        .await?;
        Trail::of(caller, organization_id)
            .created(conn, "member.add", &membership)
            .await?;
        Ok(membership)
    })
    .await
}

/// Change a member's role (ADMIN+; OWNER roles are changed only by OWNERs; never the last OWNER).
#[tracing::instrument(skip_all, fields(organization_id = %organization_id, user_id = %user_id))]
pub async fn update_role(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
) -> AppResult<MembershipRow> {
    require_person(caller)?;
    credentials::transaction(core, async |conn| {
        lock_organization(conn, organization_id).await?;
        let actor = require_role(conn, caller, organization_id, OrgRole::Admin).await?;
        let current = membership_for_update(conn, organization_id, user_id).await?;
        if (current.role == OrgRole::Owner || role == OrgRole::Owner) && actor < OrgRole::Owner {
            return Err(AppError::Forbidden(
                "only an OWNER can grant or take away the OWNER role".into(),
            ));
        }
        if current.role == OrgRole::Owner
            && role != OrgRole::Owner
            && owner_count(conn, organization_id).await? <= 1
        {
            return Err(AppError::Conflict(LAST_OWNER.into()));
        }
        let updated: MembershipRow =
            diesel::update(memberships::table.find((organization_id, user_id)))
                .set(memberships::role.eq(role))
                .returning(MembershipRow::as_returning())
                .get_result(conn)
                .await?;
        if current.role != role {
            Trail::of(caller, organization_id)
                .updated(conn, "member.role_change", &current, &updated)
                .await?;
        }
        Ok(updated)
    })
    .await
}

/// Remove a member (ADMIN+, or the member themself; OWNERs only by OWNERs; never the last OWNER).
#[tracing::instrument(skip_all, fields(organization_id = %organization_id, user_id = %user_id))]
pub async fn remove(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    require_person(caller)?;
    credentials::transaction(core, async |conn| {
        lock_organization(conn, organization_id).await?;
        let leaving_self = caller.viewer.user_id() == Some(user_id);
        let actor = require_role(
            conn,
            caller,
            organization_id,
            if leaving_self {
                OrgRole::Viewer
            } else {
                OrgRole::Admin
            },
        )
        .await?;
        let current = membership_for_update(conn, organization_id, user_id).await?;
        if current.role == OrgRole::Owner && actor < OrgRole::Owner {
            return Err(AppError::Forbidden(
                "only an OWNER can remove an OWNER".into(),
            ));
        }
        if current.role == OrgRole::Owner && owner_count(conn, organization_id).await? <= 1 {
            return Err(AppError::Conflict(LAST_OWNER.into()));
        }
        diesel::delete(memberships::table.find((organization_id, user_id)))
            .execute(conn)
            .await?;
        Trail::of(caller, organization_id)
            .deleted(conn, "member.remove", &current)
            .await?;
        Ok(true)
    })
    .await
}

/// Make `to_user_id` (a member) an OWNER and step the calling OWNER down to ADMIN.
#[tracing::instrument(skip_all, fields(organization_id = %organization_id, to_user_id = %to_user_id))]
pub async fn transfer_ownership(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    to_user_id: Uuid,
) -> AppResult<OrganizationRow> {
    require_person(caller)?;
    credentials::transaction(core, async |conn| {
        let org = lock_organization(conn, organization_id).await?;
        require_role(conn, caller, organization_id, OrgRole::Owner).await?;
        let target = membership_for_update(conn, organization_id, to_user_id).await?;
        diesel::update(memberships::table.find((organization_id, to_user_id)))
            .set(memberships::role.eq(OrgRole::Owner))
            .execute(conn)
            .await?;
        let from = caller.viewer.user_id().filter(|id| *id != to_user_id);
        if let Some(from) = from {
            // A superadmin who is not a member has no membership to step down from.
            diesel::update(
                memberships::table
                    .find((organization_id, from))
                    .filter(memberships::role.eq(OrgRole::Owner)),
            )
            .set(memberships::role.eq(OrgRole::Admin))
            .execute(conn)
            .await?;
        }
        Trail::of(caller, organization_id)
            .acted(
                conn,
                "organization.ownership_transfer",
                &org,
                Some(json!({"toUserRole": target.role.as_str()})),
                json!({"toUserId": to_user_id, "toUserRole": "OWNER", "fromUserId": from}),
            )
            .await?;
        Ok(org)
    })
    .await
}
