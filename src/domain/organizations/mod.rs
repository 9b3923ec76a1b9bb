//! Organizations (the tenant boundary) and their memberships.

pub mod members;
pub mod rows;
pub mod service;

pub use rows::{MembershipRow, OrgRole, OrganizationRow};
