//! The live audit stream of one subscriber: replay from `after`, then follow new events, with no
//! gap and no duplicate at the seam, whatever happens to notices.
//!
//! The subscriber listens for notices *before* it reads anything, then always reads the table by
//! sequence (`id > last delivered`); a notice only says when to look. Within an organization the
//! chain lock makes sequence order commit order, so reading "everything after the last one" can
//! never skip an event that commits later with a smaller sequence. Lost notices (a reconnecting
//! listener, a lagging subscriber) are covered by a resync and a periodic look. Before anything
//! new is delivered the subscriber's right to read is checked again, so a revoked session, a
//! revoked key or a demoted member stops receiving events.

use std::{collections::VecDeque, time::Duration};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use super::{
    history::{self, AuditEventRow, AuditFilter, HistoryScope},
    stream::AuditNotice,
};
use crate::{
    db::schema::audit_events,
    domain::{Core, auth::Viewer, organizations::OrgRole},
    error::{AppError, AppResult},
};

/// Events read per statement while catching up (a keyset page: no count).
const BATCH: usize = 200;
/// How often a quiet subscriber looks anyway (and re-checks its rights).
const QUIET_LOOK: Duration = Duration::from_secs(10);
/// Reads retried before the subscriber is closed with an error (it resumes with `after`).
const READ_RETRIES: u32 = 5;

/// Whether `viewer` may still read the organization's audit history (ADMIN+), with its credential
/// and roles read again ([`crate::domain::auth::reread`]); a superadmin also needs the
/// organization to be live.
#[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
pub async fn may_read(core: &Core, viewer: &Viewer, organization_id: Uuid) -> AppResult<bool> {
    let Some(now) = crate::domain::auth::reread(core, viewer).await? else {
        return Ok(false);
    };
    let standing = now.role_in(organization_id);
    let live = if standing.needs_liveness() {
        crate::domain::organizations::service::is_live(core, organization_id).await?
    } else {
        true
    };
    Ok(standing.role(live) >= Some(OrgRole::Admin))
}

/// The newest sequence of an organization (0 when it has none): where a subscription without
/// `after` starts.
async fn head(core: &Core, organization_id: Uuid) -> AppResult<i64> {
    let mut conn = core.db.conn().await?;
    let max: Option<i64> = audit_events::table
        .filter(audit_events::organization_id.eq(organization_id))
        .select(diesel::dsl::max(audit_events::id))
        .first(&mut conn)
        .await?;
    Ok(max.unwrap_or(0))
}

struct Subscriber {
    core: Core,
    viewer: Viewer,
    organization_id: Uuid,
    filter: AuditFilter,
    after: Option<i64>,
    last: Option<i64>,
    buffer: VecDeque<AuditEventRow>,
    notices: broadcast::Receiver<AuditNotice>,
    done: bool,
    /// The newest sequence of the organization this subscriber knows of (read, or announced
    /// by a notice): what it delivers is `newest - delivered` behind (`fv_audit_stream_lag`).
    newest: i64,
    _active: Active,
}

/// Counts a live subscription (`fv_audit_subscriptions_active`) for as long as it lives.
struct Active;

impl Active {
    fn new() -> Self {
        metrics::gauge!("fv_audit_subscriptions_active").increment(1.0);
        Self
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        metrics::gauge!("fv_audit_subscriptions_active").decrement(1.0);
    }
}

impl Subscriber {
    async fn read_after(&self, last: i64) -> AppResult<Vec<AuditEventRow>> {
        let mut attempt = 0;
        loop {
            match history::rows_after(
                &self.core.db,
                HistoryScope::Organization(self.organization_id),
                &self.filter,
                last,
                BATCH,
            )
            .await
            {
                Ok(rows) => return Ok(rows),
                Err(error) if attempt < READ_RETRIES => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "reading the audit stream failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(_) => return Err(AppError::Unavailable),
            }
        }
    }

    /// [`may_read`], retried like a read while the database is unavailable (a restart, a
    /// failover): the subscription outlives a short outage instead of closing.
    async fn still_may_read(&self) -> AppResult<bool> {
        let mut attempt = 0;
        loop {
            match may_read(&self.core, &self.viewer, self.organization_id).await {
                Err(AppError::Unavailable) if attempt < READ_RETRIES => {
                    attempt += 1;
                    tracing::warn!(attempt, "checking a subscriber's rights failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                other => return other,
            }
        }
    }

    /// Wait until there may be something new for this organization.
    async fn wait(&mut self) -> bool {
        let deadline = tokio::time::sleep(QUIET_LOOK);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                notice = self.notices.recv() => match notice {
                    Ok(AuditNotice::Event { organization_id: Some(org), sequence }) if org == self.organization_id => {
                        self.newest = self.newest.max(sequence);
                        return true;
                    }
                    Ok(AuditNotice::Event { .. }) => continue,
                    // Missed notices: look.
                    Ok(AuditNotice::Resync) | Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => return false,
                },
                () = &mut deadline => return true,
            }
        }
    }

    async fn next(&mut self) -> Option<AppResult<AuditEventRow>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(row) = self.buffer.pop_front() {
                self.last = Some(row.id);
                #[allow(
                    clippy::cast_precision_loss,
                    reason = "a histogram holds an f64; a lag is far below 2^53"
                )]
                metrics::histogram!("fv_audit_stream_lag")
                    .record(self.newest.saturating_sub(row.id).max(0) as f64);
                return Some(Ok(row));
            }
            let last = match self.last {
                Some(last) => last,
                None => {
                    let start = match self.after {
                        Some(after) => Ok(after),
                        None => head(&self.core, self.organization_id).await,
                    };
                    match start {
                        Ok(start) => *self.last.insert(start),
                        Err(error) => {
                            self.done = true;
                            return Some(Err(error));
                        }
                    }
                }
            };
            match self.read_after(last).await {
                Ok(rows) if !rows.is_empty() => {
                    if let Some(newest) = rows.last().map(|row| row.id) {
                        self.newest = self.newest.max(newest);
                    }
                    self.buffer.extend(rows);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
            if !self.wait().await {
                return None;
            }
            match self.still_may_read().await {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Some(Err(AppError::Forbidden(
                        "you may no longer read this audit history".into(),
                    )));
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Every event of the organization (matching `filter`) with a sequence greater than `after`, in
/// order, then every new one as it commits. Without `after` it starts at the current head.
/// The caller checked the viewer's right to read when subscribing.
pub fn follow(
    core: Core,
    viewer: Viewer,
    organization_id: Uuid,
    after: Option<i64>,
    filter: AuditFilter,
) -> impl Stream<Item = AppResult<AuditEventRow>> {
    // Listen before reading anything, so nothing committed in between is missed.
    let notices = core.audit_stream.subscribe();
    let subscriber = Subscriber {
        core,
        viewer,
        organization_id,
        filter,
        after,
        last: None,
        buffer: VecDeque::new(),
        notices,
        done: false,
        newest: 0,
        _active: Active::new(),
    };
    futures_util::stream::unfold(subscriber, |mut s| async move {
        s.next().await.map(|item| (item, s))
    })
}
