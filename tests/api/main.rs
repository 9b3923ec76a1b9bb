//! The integration tests: one binary, a module per area, all through the HTTP/GraphQL endpoint
//! against a real PostgreSQL (see `helpers`).

mod contract;
mod helpers;
mod migrations;
mod models;
mod schema_export;
mod smoke;
