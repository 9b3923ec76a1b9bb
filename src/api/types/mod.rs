//! One file per GraphQL type. Each wraps a domain row; rows are never GraphQL types themselves.

pub mod actor;
pub mod api_key;
pub mod audit_chain_report;
pub mod audit_event;
pub mod audit_filter;
pub mod audit_retention;
pub mod auth_payload;
pub mod financial_model;
pub mod membership;
pub mod metric;
pub mod model_file;
pub mod model_filter;
pub mod modelling_enums;
pub mod node;
pub mod organization;
pub mod parameter;
pub mod personal_data_export;
pub mod report;
pub mod role;
pub mod scenario;
pub mod search_hit;
pub mod series;
pub mod user;
pub mod webhook_endpoint;

pub use actor::Actor;
pub use api_key::ApiKey;
pub use audit_chain_report::AuditChainReport;
pub use audit_event::AuditEvent;
pub use audit_filter::AuditEventFilter;
pub use audit_retention::AuditRetention;
pub use auth_payload::AuthPayload;
pub use financial_model::FinancialModel;
pub use membership::Membership;
pub use metric::Metric;
pub use model_file::ModelFile;
pub use model_filter::{ModelFilter, ModelOrder, ModelOrderField};
pub use modelling_enums::{
    MetricKind, MetricUnit, ModelStatus, PeriodGranularity, ScenarioKind, SortDirection,
};
pub use node::Node;
pub use organization::Organization;
pub use parameter::{Parameter, ParameterValue};
pub use personal_data_export::PersonalDataExport;
pub use report::{Report, ReportFormat, ReportStatus};
pub use role::OrgRole;
pub use scenario::Scenario;
pub use search_hit::{HitObject, SearchHit, SearchKind};
pub use series::{MetricComparison, MetricDelta, MetricPoint, MetricSeries};
pub use user::User;
pub use webhook_endpoint::{WebhookDelivery, WebhookEndpoint};
