//! The subscription root.

mod audit;

use async_graphql::MergedSubscription;

/// Every subscription.
#[derive(MergedSubscription, Default)]
pub struct Subscription(audit::AuditSubscription);
