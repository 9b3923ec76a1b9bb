//! Audit history: the one write path (`audited`, over `record`), the hash chain, reading pages and verifying the chain.

pub mod audited;
pub mod chain;
pub mod history;
pub mod live;
pub mod record;
pub mod stream;
pub mod verify;

pub use audited::{Audited, Trail, Versioned};
pub use record::{AuditEntry, record};
