//! `enum OrgRole`.

use async_graphql::Enum;

/// A member's role in an organization, highest first: OWNER > ADMIN > ANALYST > VIEWER.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::organizations::OrgRole")]
pub enum OrgRole {
    /// Also deletes or renames the organization and transfers ownership.
    Owner,
    /// Also manages members and API keys and reads the audit history.
    Admin,
    /// Also creates and edits models, scenarios, metrics and values.
    Analyst,
    /// Reads models, scenarios and metrics.
    Viewer,
}
