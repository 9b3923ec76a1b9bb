//! The query root: one part per domain, merged.

mod accounts;
mod audit;
mod models;
mod node;
mod organizations;
mod search;

use async_graphql::MergedObject;

/// Every query.
#[derive(MergedObject, Default)]
pub struct Query(
    accounts::AccountQuery,
    node::NodeQuery,
    organizations::OrganizationQuery,
    models::ModelQuery,
    audit::AuditQuery,
    search::SearchQuery,
);
