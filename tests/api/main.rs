//! The integration tests: one binary, a module per area, all through the HTTP/GraphQL endpoint
//! against a real PostgreSQL (see `helpers`).

mod accounts;
mod api_keys;
mod audit;
mod audit_stream;
mod authorization;
mod caller_cache;
mod config;
mod contract;
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
mod organizations;
mod parameters;
mod read_path_counts;
mod read_path_statements;
mod relay;
mod scenarios;
mod schema_export;
mod series;
mod smoke;
mod subscription;
mod websocket;
