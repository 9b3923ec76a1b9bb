//! Verifying an organization's chain: recompute every hash from the stored columns, in `id`
//! order, with the same document and canonical JSON as the write path ([`super::record`]).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{
    archive::archives_of,
    chain::{canonical_json, chain_hash},
    history::AuditEventRow,
    record::hashed_document,
};
use crate::{db::schema::audit_events, domain::Core, error::AppResult};

/// Rows read per statement: bounds memory whatever the history's length.
const BATCH: i64 = 1_000;

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Events read.
    pub events_checked: i64,
    /// Every link and every hash matched.
    pub valid: bool,
    /// The first event whose `prev_hash` is not the previous event's hash (an event was removed
    /// or reordered before it) or whose hash does not match its content (it was edited).
    pub first_broken_sequence: Option<i64>,
}

/// The document whose canonical JSON a stored row's hash covers.
pub fn document_of(row: &AuditEventRow) -> serde_json::Value {
    hashed_document(
        row.organization_id,
        row.actor_user_id,
        row.actor_api_key_id,
        &row.action,
        &row.entity_type,
        row.entity_id,
        row.old_values.as_ref(),
        row.new_values.as_ref(),
        row.ip_address.as_ref(),
        row.user_agent.as_deref(),
        row.request_id.as_deref(),
        row.created_at,
    )
}

/// Whether `row` is intact and follows `previous` (the hash of the event before it, `None` for
/// the first event of the chain).
pub fn row_is_intact(row: &AuditEventRow, previous: Option<&[u8]>) -> bool {
    if row.prev_hash.as_deref() != previous {
        return false;
    }
    chain_hash(row.prev_hash.as_deref(), &canonical_json(&document_of(row))) == row.hash
}

/// Verify the chain of `organization_id`, from the last archived hash on. Reads every event in batches (one statement each);
/// after a broken link it goes on from the stored hash, so one edit is reported once, and the
/// count covers the whole history. Removing the *latest* events leaves a shorter valid chain:
/// only an outside record of the head (e.g. a published hash) can tell.
#[tracing::instrument(skip_all)]
pub async fn verify_chain(core: &Core, organization_id: Uuid) -> AppResult<ChainReport> {
    let mut conn = core.db.conn().await?;
    let mut report = ChainReport {
        events_checked: 0,
        valid: true,
        first_broken_sequence: None,
    };
    // Archived months are checked by their rows here (each continues the one before) and by
    // their files with `archive::verify_stored_archives`; the table's events go on from the
    // last archived hash.
    let mut previous: Option<Vec<u8>> = None;
    let mut after = 0_i64;
    for archive in archives_of(&mut conn, organization_id).await? {
        if report.valid && archive.prev_hash != previous {
            report.valid = false;
            report.first_broken_sequence = Some(archive.first_sequence);
        }
        previous = Some(archive.last_hash);
        after = archive.last_sequence;
    }
    loop {
        let rows: Vec<AuditEventRow> = audit_events::table
            .filter(audit_events::organization_id.eq(organization_id))
            .filter(audit_events::id.gt(after))
            .order(audit_events::id.asc())
            .limit(BATCH)
            .select(AuditEventRow::as_select())
            .load(&mut conn)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.id;
        let full = i64::try_from(rows.len()).is_ok_and(|n| n == BATCH);
        for row in rows {
            report.events_checked += 1;
            if report.valid && !row_is_intact(&row, previous.as_deref()) {
                report.valid = false;
                report.first_broken_sequence = Some(row.id);
            }
            previous = Some(row.hash);
        }
        if !full {
            break;
        }
    }
    Ok(report)
}
