//! Audit history: the one write path, the hash chain, reading pages and verifying the chain.

pub mod chain;
pub mod history;
pub mod live;
pub mod record;
pub mod stream;
pub mod verify;

pub use record::{AuditEntry, record};
