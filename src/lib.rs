//! FinVision API: a GraphQL backend for financial planning and analysis.
//!
//! `api → domain → db`: the GraphQL face (`api`) calls the core (`domain`), which alone talks to
//! the database (`db`). [`App`] (its `schema()` and `router()`) is what `main` and the tests both
//! build on; `http` serves it.

pub mod api;
pub mod app;
pub mod backup;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod telemetry;

#[cfg(test)]
mod readme_layout;

pub use app::App;
