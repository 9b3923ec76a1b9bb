//! `type AuditChainReport`.

use async_graphql::Object;

use super::Organization;
use crate::domain::{audit::verify::ChainReport, organizations::OrganizationRow};

/// The result of recomputing an organization's audit chain.
pub struct AuditChainReport {
    /// The organization verified.
    pub organization: OrganizationRow,
    /// What the verification found.
    pub report: ChainReport,
}

#[Object]
impl AuditChainReport {
    /// The organization verified.
    async fn organization(&self) -> Organization {
        Organization(self.organization.clone())
    }

    /// How many events were read.
    async fn events_checked(&self) -> i32 {
        i32::try_from(self.report.events_checked).unwrap_or(i32::MAX)
    }

    /// Whether every event links to the one before it and matches its hash.
    async fn valid(&self) -> bool {
        self.report.valid
    }

    /// The sequence of the first event that does not link to the previous one (an event was
    /// removed before it) or whose content no longer matches its hash (it was edited); `null`
    /// when the chain is valid.
    async fn first_broken_sequence(&self) -> Option<String> {
        self.report.first_broken_sequence.map(|s| s.to_string())
    }
}
