//! The GraphQL face: types, roots, guards, relay, scalars. It calls the core (`domain`) and never
//! the pool.

pub(crate) mod complexity;
pub mod context;
pub mod error_codes;
pub mod errors;
pub mod evaluation_scope;
pub mod extension;
pub mod field_errors;
pub mod guards;
pub mod idle_gate;
pub mod mutation;
pub mod query;
pub mod relay;
pub(crate) mod request_guard;
pub mod scalars;
pub mod schema;
pub mod subscription;
pub mod types;
pub mod webhook_payload;

pub use schema::{AppSchema, SchemaOptions, build_schema};
