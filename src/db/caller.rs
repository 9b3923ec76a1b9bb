//! Whose rows a connection may see: the `fv.caller` setting that the row-level security policies
//! read (migration `…000201_row_level_security`), sent with the first statement of a checkout.
//!
//! Setting it costs no round trip. For a read, it goes out at checkout without waiting for the
//! answer: tokio-postgres queues it on the connection ahead of the first real statement, which
//! the server runs after it, so both travel together. For a transaction, it is part of the one
//! simple-query batch that opens it (`BEGIN; SELECT set_config(…, true)`). Should it ever fail,
//! the connection has no caller and the policies show it no tenant row: closed, not open.

use std::cell::Cell;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use uuid::Uuid;

/// Who the database is told is calling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DbCaller {
    /// The server's own work (credential lookups, the audit listener, usage flushes, the demo
    /// seed, command-line tools) and superadmins: every organization.
    #[default]
    All,
    /// A user: the organizations of their memberships, read by the policies themselves, so that
    /// a membership gained during the request counts at once.
    User(Uuid),
    /// An API key: its one organization.
    Organization(Uuid),
    /// An anonymous request: no organization.
    Nobody,
}

impl DbCaller {
    /// The value of `fv.caller` (UUIDs and fixed words: nothing to quote).
    fn setting(self) -> String {
        match self {
            DbCaller::All => "all".to_owned(),
            DbCaller::User(id) => format!("u:{id}"),
            DbCaller::Organization(id) => format!("o:{id}"),
            DbCaller::Nobody => String::new(),
        }
    }

    /// `SELECT set_config('fv.caller', …, local)`.
    fn set_config(self, local: bool) -> String {
        format!(
            "SELECT set_config('fv.caller', '{}', {local})",
            self.setting()
        )
    }

    /// The batch that opens a transaction for this caller: one round trip, like a bare BEGIN.
    pub(crate) fn begin_sql(self) -> String {
        format!("BEGIN; {}", self.set_config(true))
    }

    /// Send the session setting for this caller ahead of the connection's next statement,
    /// without waiting for its answer (see the module docs). Not counted as a statement of the
    /// request (`StatementCounter`): it costs no round trip of its own.
    pub(crate) fn send_ahead(self, conn: &mut AsyncPgConnection) {
        let sql = self.set_config(false);
        UNCOUNTED.set(true);
        // The first poll encodes the query and hands it to the connection's task; the answer,
        // nobody waits for, is read and dropped by that task.
        let _ = std::pin::pin!(SimpleAsyncConnection::batch_execute(&mut &*conn, &sql))
            .as_mut()
            .now_or_never();
        UNCOUNTED.set(false);
    }
}

thread_local! {
    /// Set while [`DbCaller::send_ahead`] hands its statement over (synchronously, on this
    /// thread): the statement counter skips it.
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the statement being started is the caller setting sent ahead (see [`UNCOUNTED`]).
pub(crate) fn uncounted() -> bool {
    UNCOUNTED.get()
}
