//! Whose rows a connection may see: the `fv.caller` setting and those derived from it that the
//! row-level security policies read (migrations `…000201_row_level_security`,
//! `…000430_caller_settings`, `…000600_caller_further_organizations`), sent with the first
//! statement of a checkout.
//!
//! Setting it costs no round trip. For a read, it goes out at checkout without waiting for the
//! answer: tokio-postgres queues it on the connection ahead of the first real statement, which
//! the server runs after it, so both travel together. For a transaction, it is part of the one
//! simple-query batch that opens it (`BEGIN; SELECT set_config(…, true), …`). Should it ever fail,
//! the connection has no caller and the policies show it no tenant row: closed, not open.

use std::{
    cell::Cell,
    sync::{Arc, PoisonError, RwLock},
};

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use uuid::Uuid;

/// Who the database is told is calling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DbCaller {
    /// The server's own work (credential lookups, the audit listener, usage flushes, the demo
    /// seed, command-line tools) and superadmins: every organization.
    #[default]
    All,
    /// A user and the organizations they belong to, as read with their credential (live ones
    /// only). The server names them, so that a policy compares with a list instead of reading
    /// memberships: a lookup per statement and table cost more than the rest of a simple read.
    /// A membership gained within a transaction counts at once there (a trigger on
    /// `memberships` renames the caller's organizations for the transaction), and in the rest of
    /// the request once it reads its caller again ([`CallerCell::set`]).
    User(Uuid, Arc<[Uuid]>),
    /// An API key: its one organization.
    Organization(Uuid),
    /// An anonymous request: no organization.
    Nobody,
}

impl DbCaller {
    /// The value of `fv.caller` (UUIDs and fixed words: nothing to quote).
    fn setting(&self) -> String {
        match self {
            DbCaller::All => "all".to_owned(),
            DbCaller::User(id, organizations) => format!("u:{id}:{}", comma_list(organizations)),
            DbCaller::Organization(id) => format!("o:{id}"),
            DbCaller::Nobody => String::new(),
        }
    }

    /// `fv.caller` and the three settings the policies read (migrations
    /// `…000430_caller_settings` and `…000600_caller_further_organizations`, whose
    /// `fv_set_caller` derives the same from `fv.caller` for the database's own use): written
    /// out here once per checkout, so that no policy parses `fv.caller` in every statement,
    /// and with plain `set_config` calls: `fv_set_caller` doing the same costs ~120,000 more
    /// instructions per checkout (callgrind, bench/README.md).
    fn set_config(&self, local: bool) -> String {
        const NIL: &str = "00000000-0000-0000-0000-000000000000";
        // `fv.orgs` holds only the organizations after the first, and is empty when there are
        // none (most callers): a policy's last arm is then a NULL test, where a list would be
        // taken apart for every row of another organization a plan reads and rejects
        // (migration `…000600_caller_further_organizations`).
        let (all, first, further) = match self {
            DbCaller::All => ("on", NIL.to_owned(), String::new()),
            DbCaller::User(_, organizations) => (
                "off",
                organizations
                    .first()
                    .map_or(NIL.to_owned(), Uuid::to_string),
                match organizations.get(1..) {
                    Some(rest) if !rest.is_empty() => format!("{{{}}}", comma_list(rest)),
                    _ => String::new(),
                },
            ),
            DbCaller::Organization(id) => ("off", id.to_string(), String::new()),
            DbCaller::Nobody => ("off", NIL.to_owned(), String::new()),
        };
        format!(
            "SELECT set_config('fv.caller', '{caller}', {local}), \
             set_config('fv.all', '{all}', {local}), \
             set_config('fv.org', '{first}', {local}), \
             set_config('fv.orgs', '{further}', {local})",
            caller = self.setting()
        )
    }

    /// The batch that opens a transaction for this caller: one round trip, like a bare BEGIN.
    pub(crate) fn begin_sql(&self) -> String {
        format!("BEGIN; {}", self.set_config(true))
    }

    /// Send the session setting for this caller ahead of the connection's next statement,
    /// without waiting for its answer (see the module docs). Not counted as a statement of the
    /// request (`StatementCounter`): it costs no round trip of its own.
    pub(crate) fn send_ahead(&self, conn: &mut AsyncPgConnection) {
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

/// `a,b,c`: the list in `fv.caller`, and inside braces a PostgreSQL array literal.
fn comma_list(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The caller of one request's handles ([`crate::db::Db`] clones share it): set when the
/// request starts, and again when the request reads its caller anew (a mutation that made the
/// caller a member of a new organization), so that its later reads see that organization too.
#[derive(Debug, Clone, Default)]
pub struct CallerCell(Arc<RwLock<DbCaller>>);

impl CallerCell {
    /// A cell holding `caller`.
    pub fn new(caller: DbCaller) -> Self {
        Self(Arc::new(RwLock::new(caller)))
    }

    /// The caller now.
    pub fn get(&self) -> DbCaller {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Name another caller for every handle sharing this cell, from their next checkout.
    pub fn set(&self, caller: DbCaller) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = caller;
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
