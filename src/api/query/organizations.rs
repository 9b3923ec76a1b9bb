//! `organization`, `organizations`.

use async_graphql::{Context, ID, Object};

use crate::{
    api::{
        context::{loader, state},
        errors::{ApiResult, IntoApi},
        guards::{Authenticated, can_see_organization},
        relay::{Conn, NodeKind, PageArgs, decode, paginate, time_key},
        types::Organization,
    },
    domain::{
        auth::Viewer,
        loader::{MembershipsOfUser, OrganizationById, OrganizationBySlug, all_organizations},
    },
    error::AppError,
};

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// One organization by `id` or by `slug` (exactly one of them); `null` when it does not
    /// exist or you are not a member.
    #[graphql(guard = "Authenticated")]
    async fn organization(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
    ) -> ApiResult<Option<Organization>> {
        let row = match (id, slug) {
            (Some(id), None) => {
                let id = decode(&id, NodeKind::Organization, "id")?;
                loader(ctx).load_one(OrganizationById(id)).await?
            }
            (None, Some(slug)) => loader(ctx).load_one(OrganizationBySlug(slug)).await?,
            _ => {
                return Err(
                    AppError::bad_input("id", "give exactly one of `id` and `slug`").into(),
                );
            }
        };
        match row {
            Some(row) if can_see_organization(ctx, row.id).await? => Ok(Some(Organization(row))),
            _ => Ok(None),
        }
    }

    /// Your organizations, in the order you joined them (a superadmin's: every organization,
    /// oldest first).
    #[graphql(
        guard = "Authenticated",
        complexity = "crate::api::complexity::page(first, None, child_complexity)"
    )]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Conn<Organization>> {
        let st = state(ctx);
        let args = PageArgs::forward(first, after);
        if st.caller().viewer.is_superadmin() {
            let rows = all_organizations(&st.core).await.api()?;
            return Ok(paginate(
                rows,
                &args,
                |o| time_key(o.created_at, o.id),
                Organization,
            )?);
        }
        // An API key's one organization.
        if let Viewer::ApiKey {
            organization_id, ..
        } = st.caller().viewer
        {
            let page = paginate(vec![organization_id], &args, |id| id.to_string(), |id| id)?;
            return Organization::load_connection(ctx, page).await;
        }
        // Anonymous callers have no organizations: an empty list, like a user with none.
        let memberships = match st.caller().viewer.user_id() {
            Some(me) => loader(ctx)
                .load_one(MembershipsOfUser(me))
                .await?
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let page = paginate(
            memberships,
            &args,
            |m| time_key(m.created_at, m.organization_id),
            |m| m.organization_id,
        )?;
        Organization::load_connection(ctx, page).await
    }
}
