//! The one shape of an audited change. Every mutation service runs in [`Core::transaction`],
//! checks the version it was given with [`Versioned::check_version`], writes its row and then
//! tells the [`Trail`] what happened (`created`, `updated`, `deleted`): the event is written in
//! the same transaction, so a change and its event commit or roll back together, and a new kind
//! of row gets its events by implementing [`Audited`].
//!
//! [`Core::transaction`]: crate::domain::Core::transaction

use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::record::{AuditEntry, record};
use crate::{
    domain::{auth::Caller, names::stale_version},
    error::AppResult,
};

/// A row whose changes the audit trail records.
pub trait Audited {
    /// The trail's `entity_type`, e.g. `FinancialModel`.
    const ENTITY: &'static str;
    /// What a client calls it in messages, e.g. `model`.
    const NOUN: &'static str;

    /// The trail's `entity_id`.
    fn audit_id(&self) -> Uuid;

    /// The fields the trail shows (never a secret): all of them on creation and deletion, the
    /// ones that differ on an update.
    fn audit_values(&self) -> Value;
}

/// A row under optimistic concurrency: clients send the version they read.
pub trait Versioned: Audited {
    /// The stored version.
    fn version(&self) -> i32;

    /// `CONFLICT` unless the client read the stored version.
    fn check_version(&self, expected: i32) -> AppResult<()> {
        if self.version() == expected {
            Ok(())
        } else {
            Err(stale_version(Self::NOUN, self.version()))
        }
    }
}

/// Where the events of one transaction go: an organization's chain (or the platform's), acted by
/// the caller.
#[derive(Clone, Copy)]
pub struct Trail<'a> {
    caller: &'a Caller,
    organization_id: Option<Uuid>,
}

impl<'a> Trail<'a> {
    /// The chain of `organization_id`.
    pub fn of(caller: &'a Caller, organization_id: Uuid) -> Self {
        Self {
            caller,
            organization_id: Some(organization_id),
        }
    }

    /// The platform's chain (accounts, sessions).
    pub fn platform(caller: &'a Caller) -> Self {
        Self {
            caller,
            organization_id: None,
        }
    }

    fn entry<R: Audited>(self, action: &'static str, row: &R) -> AuditEntry {
        AuditEntry::new(
            self.organization_id,
            action,
            R::ENTITY,
            Some(row.audit_id()),
        )
    }

    /// `row` was created: the event carries all its values.
    pub async fn created<R: Audited>(
        self,
        conn: &mut AsyncPgConnection,
        action: &'static str,
        row: &R,
    ) -> AppResult<()> {
        let entry = self.entry(action, row).with_new(row.audit_values());
        self.record(conn, entry).await
    }

    /// `old` became `new`: the event carries the fields that differ.
    pub async fn updated<R: Audited>(
        self,
        conn: &mut AsyncPgConnection,
        action: &'static str,
        old: &R,
        new: &R,
    ) -> AppResult<()> {
        let entry = self
            .entry(action, new)
            .with_change(old.audit_values(), new.audit_values());
        self.record(conn, entry).await
    }

    /// `row` was deleted: the event keeps its last values.
    pub async fn deleted<R: Audited>(
        self,
        conn: &mut AsyncPgConnection,
        action: &'static str,
        row: &R,
    ) -> AppResult<()> {
        let entry = self.entry(action, row).with_old(row.audit_values());
        self.record(conn, entry).await
    }

    /// Something happened to `row` that its values do not show (a lock, a copy, a bulk write):
    /// the event carries `old` and `new` as given (`old` may be `None`).
    pub async fn acted<R: Audited>(
        self,
        conn: &mut AsyncPgConnection,
        action: &'static str,
        row: &R,
        old: Option<Value>,
        new: Value,
    ) -> AppResult<()> {
        let mut entry = self.entry(action, row).with_new(new);
        entry.old_values = old;
        self.record(conn, entry).await
    }

    /// Any other event of this trail (sign-ins, whose actor is not the caller).
    pub async fn record(self, conn: &mut AsyncPgConnection, entry: AuditEntry) -> AppResult<()> {
        let entry = AuditEntry {
            organization_id: self.organization_id,
            ..entry
        };
        record(conn, self.caller, entry).await.map(drop)
    }
}
