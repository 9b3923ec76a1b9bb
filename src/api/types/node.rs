//! `interface Node`.

use async_graphql::{ID, Interface};

use super::{
    ApiKey, AuditEvent, FinancialModel, Membership, Metric, ModelFile, Organization, Parameter,
    Report, Scenario, User, WebhookEndpoint,
};

/// An object with a global ID, resolvable with `node(id:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's opaque global ID."))]
pub enum Node {
    /// A user.
    User(User),
    /// An organization.
    Organization(Organization),
    /// A membership.
    Membership(Membership),
    /// A financial model.
    FinancialModel(FinancialModel),
    /// A scenario.
    Scenario(Scenario),
    /// A parameter.
    Parameter(Parameter),
    /// A metric.
    Metric(Metric),
    /// An API key.
    ApiKey(ApiKey),
    /// An audit event.
    AuditEvent(AuditEvent),
    /// An uploaded file version.
    ModelFile(ModelFile),
    /// A generated report.
    Report(Report),
    /// A webhook endpoint.
    WebhookEndpoint(WebhookEndpoint),
}
