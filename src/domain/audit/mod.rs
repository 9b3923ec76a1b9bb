//! Audit history: the one write path (`audited`, over `record`), the hash chain, reading pages and verifying the chain, and retention (`retention`, `archive`).

pub mod archive;
pub mod archive_file;
pub mod audited;
pub mod chain;
pub mod history;
pub mod live;
pub mod record;
pub mod retention;
pub mod stream;
pub mod verify;

pub use audited::{Audited, Trail, Versioned};
pub use record::{AuditEntry, record};
