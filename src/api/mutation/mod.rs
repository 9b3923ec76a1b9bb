//! The mutation root: one part per domain, merged. Every mutation is one transaction with its
//! audit event (see `domain::audit::record`).

mod accounts;
mod api_keys;
mod files;
mod metrics;
mod models;
mod organizations;
mod parameters;
mod reports;
mod scenarios;
mod webhooks;

use async_graphql::MergedObject;

/// Every mutation.
#[derive(MergedObject, Default)]
pub struct Mutation(
    accounts::AccountMutation,
    organizations::OrganizationMutation,
    api_keys::ApiKeyMutation,
    models::ModelMutation,
    scenarios::ScenarioMutation,
    parameters::ParameterMutation,
    metrics::MetricMutation,
    files::ModelFileMutation,
    reports::ReportMutation,
    webhooks::WebhookMutation,
);
