//! One file per GraphQL type. Each wraps a domain row; rows are never GraphQL types themselves.

pub mod auth_payload;
pub mod membership;
pub mod node;
pub mod organization;
pub mod role;
pub mod user;

pub use auth_payload::AuthPayload;
pub use membership::Membership;
pub use node::Node;
pub use organization::Organization;
pub use role::OrgRole;
pub use user::User;
