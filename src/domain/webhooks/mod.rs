//! Audit webhooks: an organization's audit events POSTed, in sequence order and signed in the
//! Standard Webhooks scheme, to HTTPS endpoints that cannot hold a subscription open.
//!
//! [`service`] manages endpoints (each change with its audit event); [`delivery`] runs the
//! workers that deliver batches at least once, moving an endpoint's cursor only on a 2xx;
//! [`guard`] refuses destinations on loopback, private, link-local or metadata addresses;
//! [`signing`] makes secrets and signatures.

pub mod delivery;
pub mod guard;
pub mod loaders;
pub mod rows;
pub mod service;
pub mod signing;

pub use delivery::{PayloadShape, WebhookSettings};
pub use rows::{WebhookDeliveryRow, WebhookEndpointRow};
