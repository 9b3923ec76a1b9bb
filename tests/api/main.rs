//! The integration tests: one binary, a module per area, all through the HTTP/GraphQL endpoint
//! against a real PostgreSQL (see `helpers`).

mod authorization;
mod contract;
mod helpers;
mod migrations;
mod organizations;
mod relay;
mod schema_export;
mod smoke;
