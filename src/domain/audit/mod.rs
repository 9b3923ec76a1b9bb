//! Audit history: the one write path and the hash chain.

pub mod chain;
pub mod record;
pub mod stream;

pub use record::{AuditEntry, record};
