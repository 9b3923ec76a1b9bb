//! `node`, `nodes`: any object by global ID, with the same visibility as everywhere else.

use async_graphql::{Context, ID, Object};
use futures_util::future::try_join_all;

use crate::{
    api::{
        context::loader,
        errors::ApiResult,
        guards::{
            Authenticated, can_read_audit, can_see_organization, viewer_role, visible_model,
            visible_scenario, visible_user,
        },
        relay::{NodeKind, decode_any, decode_sequence},
        types::{
            ApiKey, AuditEvent, FinancialModel, Membership, Metric, ModelFile, Node, Organization,
            Parameter, Report, Scenario, User, WebhookEndpoint,
        },
    },
    domain::{
        audit::history::AuditEventById,
        auth::api_keys::ApiKeyById,
        loader::{MembershipsOfOrganization, OrganizationById},
        modelling::loaders::{FileById, MetricById, ParameterById},
        organizations::OrgRole,
        reports::loaders::ReportById,
        webhooks::loaders::WebhookEndpointById,
    },
    error::AppError,
};

/// Most ids one `nodes` call resolves.
const MAX_NODES: usize = 100;

#[derive(Default)]
pub struct NodeQuery;

/// Resolve one global ID; `None` when it names nothing the caller may see.
async fn resolve(ctx: &Context<'_>, id: &ID, field: &str) -> ApiResult<Option<Node>> {
    let (kind, ids) = decode_any(id, field)?;
    Ok(match kind {
        NodeKind::User => visible_user(ctx, ids[0])
            .await?
            .map(|r| Node::User(User(r))),
        NodeKind::Organization => {
            if !can_see_organization(ctx, ids[0]).await? {
                return Ok(None);
            }
            loader(ctx)
                .load_one(OrganizationById(ids[0]))
                .await?
                .map(|r| Node::Organization(Organization(r)))
        }
        NodeKind::FinancialModel => visible_model(ctx, ids[0])
            .await?
            .map(|m| Node::FinancialModel(FinancialModel(m))),
        NodeKind::Scenario => visible_scenario(ctx, ids[0])
            .await?
            .map(|s| Node::Scenario(Scenario(s))),
        NodeKind::Parameter => match loader(ctx).load_one(ParameterById(ids[0])).await? {
            Some(p) if visible_model(ctx, p.model_id).await?.is_some() => {
                Some(Node::Parameter(Parameter(p)))
            }
            _ => None,
        },
        NodeKind::Metric => match loader(ctx).load_one(MetricById(ids[0])).await? {
            Some(m) if visible_model(ctx, m.model_id).await?.is_some() => {
                Some(Node::Metric(Metric(m)))
            }
            _ => None,
        },
        // Keys and history are ADMIN+ reading: to anyone else they do not exist.
        NodeKind::ApiKey => match loader(ctx).load_one(ApiKeyById(ids[0])).await? {
            Some(k)
                if viewer_role(ctx, k.organization_id)
                    .await?
                    .is_some_and(|r| r >= OrgRole::Admin) =>
            {
                Some(Node::ApiKey(ApiKey(k)))
            }
            _ => None,
        },
        NodeKind::AuditEvent => {
            let sequence = decode_sequence(id, field)?;
            match loader(ctx).load_one(AuditEventById(sequence)).await? {
                Some(e) if can_read_audit(ctx, e.organization_id).await? => {
                    Some(Node::AuditEvent(AuditEvent(e)))
                }
                _ => None,
            }
        }
        NodeKind::ModelFile => match loader(ctx).load_one(FileById(ids[0])).await? {
            Some(f) if visible_model(ctx, f.model_id).await?.is_some() => {
                Some(Node::ModelFile(ModelFile(f)))
            }
            _ => None,
        },
        NodeKind::Report => match loader(ctx).load_one(ReportById(ids[0])).await? {
            Some(r) if visible_model(ctx, r.model_id).await?.is_some() => {
                Some(Node::Report(Report(r)))
            }
            _ => None,
        },
        NodeKind::WebhookEndpoint => {
            match loader(ctx).load_one(WebhookEndpointById(ids[0])).await? {
                Some(w)
                    if viewer_role(ctx, w.organization_id)
                        .await?
                        .is_some_and(|r| r >= OrgRole::Admin) =>
                {
                    Some(Node::WebhookEndpoint(WebhookEndpoint(w)))
                }
                _ => None,
            }
        }
        NodeKind::Membership => {
            if !can_see_organization(ctx, ids[0]).await? {
                return Ok(None);
            }
            let members = loader(ctx)
                .load_one(MembershipsOfOrganization(ids[0]))
                .await?
                .unwrap_or_default();
            members
                .into_iter()
                .find(|m| m.user_id == ids[1])
                .map(|m| Node::Membership(Membership(m)))
        }
    })
}

#[Object]
impl NodeQuery {
    /// Any object by its global ID; `null` when it does not exist or is not visible to you.
    #[graphql(guard = "Authenticated")]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Node>> {
        resolve(ctx, &id, "id").await
    }

    /// Several objects by global ID (at most 100), in the order given; `null` for each one that
    /// does not exist or is not visible to you.
    #[graphql(
        guard = "Authenticated",
        complexity = "crate::api::complexity::nodes(&ids, child_complexity)"
    )]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> ApiResult<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(AppError::bad_input("ids", format!("at most {MAX_NODES} ids")).into());
        }
        try_join_all(ids.iter().enumerate().map(|(i, id)| {
            let field = format!("ids.{i}");
            async move { resolve(ctx, id, &field).await }
        }))
        .await
    }
}
