//! Organization and membership mutations.

use async_graphql::{Context, ID, InputObject, Json, Object};
use serde_json::Value;

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::{Authenticated, SignedIn},
        relay::{NodeKind, decode},
        types::{AuditRetention, Membership, OrgRole, Organization},
    },
    domain::{
        audit::retention,
        organizations::{members, service},
    },
};

/// A new organization.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Display name.
    pub name: String,
    /// Unique handle: 3–63 lowercase letters, digits and inner hyphens.
    pub slug: String,
    /// Free-form settings object.
    pub settings: Option<Json<Value>>,
}

/// Changes to an organization; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// The organization.
    pub id: ID,
    /// The version you read; a stale one is a `CONFLICT`.
    pub version: i32,
    /// New name.
    pub name: Option<String>,
    /// New slug (OWNER only).
    pub slug: Option<String>,
    /// New settings (replaces the object).
    pub settings: Option<Json<Value>>,
}

/// A member to add, by the email of an existing account.
#[derive(InputObject)]
pub struct AddMemberInput {
    /// The organization.
    pub organization_id: ID,
    /// The account's email.
    pub email: String,
    /// The role to grant (OWNER only by an OWNER).
    pub role: OrgRole,
}

/// A role change.
#[derive(InputObject)]
pub struct UpdateMemberRoleInput {
    /// The organization.
    pub organization_id: ID,
    /// The member.
    pub user_id: ID,
    /// The new role.
    pub role: OrgRole,
}

/// A member to remove.
#[derive(InputObject)]
pub struct RemoveMemberInput {
    /// The organization.
    pub organization_id: ID,
    /// The member (yourself to leave).
    pub user_id: ID,
}

/// An ownership transfer.
#[derive(InputObject)]
pub struct TransferOwnershipInput {
    /// The organization.
    pub organization_id: ID,
    /// The member who becomes OWNER; you become ADMIN.
    pub to_user_id: ID,
}

#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    /// Create an organization; you become its OWNER.
    #[graphql(guard = "SignedIn")]
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> ApiResult<Organization> {
        let st = state(ctx);
        let row = service::create(
            &st.core,
            &st.caller(),
            &input.name,
            &input.slug,
            input.settings.map(|j| j.0),
        )
        .await
        .api()?;
        // The payload (`viewerRole`, `members`) reads the caller's new OWNER role.
        st.reread_caller().await.api()?;
        Ok(Organization(row))
    }

    /// Rename or reconfigure an organization (ADMIN+; the slug OWNER only).
    #[graphql(guard = "Authenticated")]
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> ApiResult<Organization> {
        let st = state(ctx);
        let id = decode(&input.id, NodeKind::Organization, "input.id")?;
        let changes = service::OrganizationChanges {
            name: input.name,
            slug: input.slug,
            settings: input.settings.map(|j| j.0),
        };
        Ok(Organization(
            service::update(&st.core, &st.caller(), id, input.version, changes)
                .await
                .api()?,
        ))
    }

    /// Delete an organization (OWNER). It disappears from the API; its slug becomes free.
    #[graphql(guard = "Authenticated")]
    async fn delete_organization(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let st = state(ctx);
        let id = decode(&id, NodeKind::Organization, "id")?;
        let deleted = service::delete(&st.core, &st.caller(), id).await.api()?;
        st.reread_caller().await.api()?;
        Ok(deleted)
    }

    /// Keep the organization's audit events in the database for `months` months (at least 12;
    /// `null` keeps everything) (OWNER). Older whole months are archived as JSON Lines to the
    /// object store by the server's archive job, and leave the table; the chain stays
    /// verifiable. The change writes its own audit event.
    #[graphql(guard = "Authenticated")]
    async fn set_audit_retention(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        months: Option<i32>,
    ) -> ApiResult<AuditRetention> {
        let st = state(ctx);
        let org = decode(&organization_id, NodeKind::Organization, "organizationId")?;
        Ok(AuditRetention(
            retention::set_retention(&st.core, &st.caller(), org, months)
                .await
                .api()?,
        ))
    }

    /// Add an existing account to the organization (ADMIN+; only an OWNER grants OWNER).
    #[graphql(guard = "Authenticated")]
    async fn add_member(&self, ctx: &Context<'_>, input: AddMemberInput) -> ApiResult<Membership> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        Ok(Membership(
            members::add(&st.core, &st.caller(), org, &input.email, input.role.into())
                .await
                .api()?,
        ))
    }

    /// Change a member's role (ADMIN+; OWNER roles only by an OWNER; never the last OWNER).
    #[graphql(guard = "Authenticated")]
    async fn update_member_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateMemberRoleInput,
    ) -> ApiResult<Membership> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        let user = decode(&input.user_id, NodeKind::User, "input.userId")?;
        let row = members::update_role(&st.core, &st.caller(), org, user, input.role.into())
            .await
            .api()?;
        if st.caller().viewer.user_id() == Some(user) {
            st.reread_caller().await.api()?;
        }
        Ok(Membership(row))
    }

    /// Remove a member (ADMIN+), or leave (any member, yourself). Never the last OWNER.
    #[graphql(guard = "Authenticated")]
    async fn remove_member(&self, ctx: &Context<'_>, input: RemoveMemberInput) -> ApiResult<bool> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        let user = decode(&input.user_id, NodeKind::User, "input.userId")?;
        let removed = members::remove(&st.core, &st.caller(), org, user)
            .await
            .api()?;
        if st.caller().viewer.user_id() == Some(user) {
            st.reread_caller().await.api()?;
        }
        Ok(removed)
    }

    /// Make another member OWNER; you step down to ADMIN (OWNER).
    #[graphql(guard = "Authenticated")]
    async fn transfer_ownership(
        &self,
        ctx: &Context<'_>,
        input: TransferOwnershipInput,
    ) -> ApiResult<Organization> {
        let st = state(ctx);
        let org = NodeKind::Organization.decode(&input.organization_id, "input.organizationId")?;
        let to = decode(&input.to_user_id, NodeKind::User, "input.toUserId")?;
        let row = members::transfer_ownership(&st.core, &st.caller(), org, to)
            .await
            .api()?;
        // The payload's `viewerRole` is the caller's new ADMIN role.
        st.reread_caller().await.api()?;
        Ok(Organization(row))
    }
}
