//! The integration tests: one binary, a module per area, all through the HTTP/GraphQL endpoint
//! against a real PostgreSQL (see `helpers`).

// A test binary: its helpers panic on what they did not expect, which is how a test fails
// (clippy's allow-unwrap-in-tests only covers `#[test]` functions and `#[cfg(test)]` modules);
// its counts and sizes are small and known, and a wrong conversion fails the test anyway.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod accounts;
mod api_keys;
mod audit;
mod audit_retention;
mod audit_stream;
mod audited_changes;
mod authorization;
mod backup;
mod caller_cache;
mod config;
mod contract;
mod data_governance;
mod demo;
mod factories;
mod files;
mod front_door;
mod helpers;
mod hostile;
mod migrations;
mod modelling_roles;
mod modelling_statements;
mod models;
mod observability;
mod organizations;
mod parameters;
mod personal_data;
mod pgbouncer;
mod pitr;
mod read_path_counts;
mod read_path_statements;
mod relay;
mod replicas;
mod reports;
mod scenarios;
mod schema_export;
mod search;
mod series;
mod smoke;
mod subscription;
mod webhooks;
mod websocket;
mod workbench;
