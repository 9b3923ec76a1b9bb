//! The archive job: for each organization with a retention, each whole month older than the
//! retention leaves `audit_events` for a JSON Lines file in the object store
//! (`audit-archive/<org>/<yyyy-mm>.jsonl`, see [`super::archive_file`]).
//!
//! Crash-safe in this order: read the month's events, write the file, read it back and verify
//! it (hashes, links, count, last hash), then in one transaction under the organization's
//! archive lock record an `audit_archives` row and delete exactly those events
//! (`fv_audit_archive_month`, the only DELETE the append-only trigger lets through). A crash
//! before the commit leaves the events in the table and a file that the next run overwrites
//! with the same bytes; after it, the month is done. The server runs it periodically
//! ([`run_every`]); `finvision archive-audit` runs it once.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use diesel::{
    prelude::*,
    sql_types::{BigInt, Bytea, Date, Integer, Nullable, Text},
};
use diesel_async::RunQueryDsl;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    archive_file::{ArchiveReport, archive_bytes, archive_key, verify_archive},
    chain::chain_lock_key,
    history::AuditEventRow,
    retention::month_end,
};
use crate::{
    db::schema::{audit_archives, audit_events, organizations},
    domain::Core,
    error::{AppError, AppResult},
};

/// Rows read per statement while building a file.
const BATCH: i64 = 5_000;

/// Months of partitions kept ready ahead of the current one.
pub const PARTITIONS_AHEAD: i32 = 3;

/// What one run archived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveRun {
    /// (organization, month) pairs archived, oldest first per organization.
    pub months: Vec<(Uuid, NaiveDate)>,
    /// Events that left the table.
    pub events: i64,
}

/// One `audit_archives` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_archives, check_for_backend(diesel::pg::Pg))]
pub struct AuditArchiveRow {
    /// The organization.
    pub organization_id: Uuid,
    /// The month (its first day).
    pub month: NaiveDate,
    /// The object-store key of the file.
    pub storage_key: String,
    /// The first archived sequence.
    pub first_sequence: i64,
    /// The last archived sequence.
    pub last_sequence: i64,
    /// Events in the file.
    pub event_count: i64,
    /// The hash the first archived event follows.
    pub prev_hash: Option<Vec<u8>>,
    /// The last archived event's hash.
    pub last_hash: Vec<u8>,
    /// SHA-256 of the file.
    pub file_sha256: Vec<u8>,
}

/// The first day of the month of `at` (UTC).
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap_or_default()
}

/// The archives of `organization_id`, oldest first.
pub(crate) async fn archives_of(
    conn: &mut diesel_async::AsyncPgConnection,
    organization_id: Uuid,
) -> AppResult<Vec<AuditArchiveRow>> {
    Ok(audit_archives::table
        .filter(audit_archives::organization_id.eq(organization_id))
        .order(audit_archives::first_sequence.asc())
        .select(AuditArchiveRow::as_select())
        .load(conn)
        .await?)
}

/// Create the monthly partitions of `audit_events` from the month of `now` to
/// [`PARTITIONS_AHEAD`] months after it; returns how many were created.
#[tracing::instrument(skip_all)]
pub async fn ensure_partitions(core: &Core, now: DateTime<Utc>) -> AppResult<i32> {
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = Integer)]
        created: i32,
    }
    let mut conn = core.db.conn_for_transaction().await?;
    let row: Created =
        diesel::sql_query("SELECT fv_audit_events_ensure_partitions($1, $2) AS created")
            .bind::<Date, _>(month_of(now))
            .bind::<Integer, _>(PARTITIONS_AHEAD + 1)
            .get_result(&mut *conn)
            .await?;
    Ok(row.created)
}

/// Archive every expired month of every organization with a retention, as of `now`.
#[tracing::instrument(skip_all)]
pub async fn archive_expired(core: &Core, now: DateTime<Utc>) -> AppResult<ArchiveRun> {
    let settings: Vec<(Uuid, i32)> = {
        let mut conn = core.db.conn().await?;
        organizations::table
            .filter(organizations::audit_retention_months.is_not_null())
            .select((
                organizations::id,
                organizations::audit_retention_months.assume_not_null(),
            ))
            .load(&mut *conn)
            .await?
    };
    let mut run = ArchiveRun::default();
    for (organization_id, months) in settings {
        // Months that end on or before this day are past the retention.
        let cutoff = month_of(now)
            .checked_sub_months(Months::new(u32::try_from(months).unwrap_or(0)))
            .unwrap_or_default();
        while let Some((month, events)) =
            archive_oldest_month(core, organization_id, cutoff).await?
        {
            run.months.push((organization_id, month));
            run.events += events;
        }
    }
    Ok(run)
}

/// Archive the organization's oldest month in the table if it starts before `cutoff`; returns
/// the month and its event count, `None` when nothing is expired.
#[tracing::instrument(skip_all, fields(organization = %organization_id))]
async fn archive_oldest_month(
    core: &Core,
    organization_id: Uuid,
    cutoff: NaiveDate,
) -> AppResult<Option<(NaiveDate, i64)>> {
    let mut conn = core.db.conn().await?;
    let oldest: Option<DateTime<Utc>> = audit_events::table
        .filter(audit_events::organization_id.eq(organization_id))
        .order(audit_events::id.asc())
        .select(audit_events::created_at)
        .first(&mut *conn)
        .await
        .optional()?;
    let Some(oldest) = oldest else {
        return Ok(None);
    };
    let month = month_of(oldest);
    if month >= cutoff {
        return Ok(None);
    }
    // The month as a range of sequences: everything up to its last event, so that the events
    // left in the table always continue the archived chain.
    let through: Option<i64> = audit_events::table
        .filter(audit_events::organization_id.eq(organization_id))
        .filter(audit_events::created_at.lt(month_end(month)))
        .select(diesel::dsl::max(audit_events::id))
        .first(&mut *conn)
        .await?;
    let Some(through) = through else {
        return Ok(None);
    };
    let previous = archives_of(&mut conn, organization_id).await?.pop();
    let mut rows: Vec<AuditEventRow> = Vec::new();
    let mut after = previous.as_ref().map_or(0, |a| a.last_sequence);
    loop {
        let batch: Vec<AuditEventRow> = audit_events::table
            .filter(audit_events::organization_id.eq(organization_id))
            .filter(audit_events::id.gt(after))
            .filter(audit_events::id.le(through))
            .order(audit_events::id.asc())
            .limit(BATCH)
            .select(AuditEventRow::as_select())
            .load(&mut *conn)
            .await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = last.id;
        rows.extend(batch);
    }
    drop(conn);

    let bytes = archive_bytes(&rows);
    let expected_prev = previous.as_ref().map(|a| a.last_hash.as_slice());
    let report = verify_archive(&bytes, Some(expected_prev));
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let (Some(first), Some(last)) = (<[AuditEventRow]>::first(&rows), rows.last()) else {
        return Ok(None);
    };
    if !report.valid || report.events != count || report.last_sequence != Some(last.id) {
        return Err(AppError::internal(anyhow::anyhow!(
            "audit archive of {organization_id} {month}: the chain does not verify before archiving ({report:?})"
        )));
    }
    let key = archive_key(organization_id, &month.format("%Y-%m").to_string());
    let sha256 = Sha256::digest(&bytes).to_vec();
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    core.files.put(&key, Bytes::from(bytes)).await?;
    let stored = read_object(core, &key).await?;
    if Sha256::digest(&stored).as_slice() != sha256.as_slice() {
        return Err(AppError::internal(anyhow::anyhow!(
            "audit archive {key}: the stored file differs from the one written"
        )));
    }

    let (first_sequence, last_sequence, last_hash) = (first.id, last.id, last.hash.clone());
    let prev_hash = first.prev_hash.clone();
    core.transaction(async |conn| {
        // Archivers of one organization (several instances) take turns; writers do not wait:
        // the next event links by hash to the last archived one whether it reads the row
        // before this commits or the `audit_archives` row after.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(!chain_lock_key(Some(organization_id)))
            .execute(conn)
            .await?;
        // A busy organization's month is more rows than a request's statement deletes.
        diesel::sql_query("SET LOCAL statement_timeout = 0")
            .execute(conn)
            .await?;
        diesel::sql_query("SELECT fv_audit_archive_month($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind::<diesel::sql_types::Uuid, _>(organization_id)
            .bind::<Date, _>(month)
            .bind::<Text, _>(&key)
            .bind::<BigInt, _>(first_sequence)
            .bind::<BigInt, _>(last_sequence)
            .bind::<BigInt, _>(count)
            .bind::<Nullable<Bytea>, _>(prev_hash.as_deref())
            .bind::<Bytea, _>(last_hash.as_slice())
            .bind::<Bytea, _>(sha256.as_slice())
            .bind::<BigInt, _>(size)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await?;
    tracing::info!(%organization_id, %month, events = count, key, "audit month archived");
    Ok(Some((month, count)))
}

/// The whole object under `key`.
async fn read_object(core: &Core, key: &str) -> AppResult<Vec<u8>> {
    let object = core.files.get(key).await?;
    let chunks: Vec<Bytes> = object.chunks.try_collect().await?;
    Ok(chunks.concat())
}

/// One stored archive checked against its row: the file's SHA-256, count, first and last
/// sequences and hashes, and every line's hash and link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchiveCheck {
    /// The month.
    pub month: NaiveDate,
    /// The object-store key.
    pub storage_key: String,
    /// What the file itself says.
    pub report: ArchiveReport,
    /// The file verifies and matches its row (and so the chain before and after it).
    pub valid: bool,
}

/// Verify every archive file of `organization_id` in the object store against its
/// `audit_archives` row, oldest first (`finvision verify-archive --organization`).
#[tracing::instrument(skip_all, fields(organization = %organization_id))]
pub async fn verify_stored_archives(
    core: &Core,
    organization_id: Uuid,
) -> AppResult<Vec<StoredArchiveCheck>> {
    let archives = {
        let mut conn = core.db.conn().await?;
        archives_of(&mut conn, organization_id).await?
    };
    let mut checks = Vec::with_capacity(archives.len());
    for archive in archives {
        let bytes = read_object(core, &archive.storage_key).await?;
        let report = verify_archive(&bytes, Some(archive.prev_hash.as_deref()));
        let valid = report.valid
            && Sha256::digest(&bytes).as_slice() == archive.file_sha256.as_slice()
            && report.events == archive.event_count
            && report.first_sequence == Some(archive.first_sequence)
            && report.last_sequence == Some(archive.last_sequence)
            && report.last_hash.as_deref() == Some(archive.last_hash.as_slice());
        checks.push(StoredArchiveCheck {
            month: archive.month,
            storage_key: archive.storage_key,
            report,
            valid,
        });
    }
    Ok(checks)
}

/// The server's maintenance loop: every `period`, make sure the coming months have partitions
/// and archive what has expired. Failures are logged and retried at the next period.
pub async fn run_every(core: Core, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = Utc::now();
        if let Err(err) = ensure_partitions(&core, now).await {
            tracing::warn!(error = %err, "creating audit partitions failed");
        }
        match archive_expired(&core, now).await {
            Ok(run) if run.events > 0 => tracing::info!(
                months = run.months.len(),
                events = run.events,
                "audit archive run"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "the audit archive run failed"),
        }
    }
}
