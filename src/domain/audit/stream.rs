//! Fan-out of audit events across server instances: one dedicated connection per instance
//! (outside the pool: pooled connections are recycled, and a LISTEN is session state) listens on
//! the `fv_audit` channel, which a trigger notifies on every committed insert, and rebroadcasts
//! each notice in-process. Notices only say "something new in organization X"; subscribers read
//! the events themselves from the table by sequence, so a lost or late notice never loses an
//! event: after a reconnect the instance broadcasts [`AuditNotice::Resync`] and every subscriber
//! catches up from the last sequence it delivered.

use std::{
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use uuid::Uuid;

/// The notification channel (see the `audit_notify` migration).
pub const CHANNEL: &str = "fv_audit";

/// How often an idle listening connection is checked, so a dead one is noticed within seconds.
const HEALTH_CHECK: Duration = Duration::from_secs(3);

/// What subscribers are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditNotice {
    /// An event was committed.
    Event {
        /// Its organization (`None`: platform events).
        organization_id: Option<Uuid>,
        /// Its sequence.
        sequence: i64,
    },
    /// Notices may have been missed (the listening connection was re-established): catch up.
    Resync,
}

/// Parse a `fv_audit` payload: `<organization uuid or empty>:<id>`.
pub fn parse_payload(payload: &str) -> Option<AuditNotice> {
    let (org, id) = payload.split_once(':')?;
    let organization_id = if org.is_empty() {
        None
    } else {
        Some(Uuid::parse_str(org).ok()?)
    };
    Some(AuditNotice::Event {
        organization_id,
        sequence: id.parse().ok()?,
    })
}

/// The in-process side of the fan-out. Cheap to clone.
#[derive(Clone)]
pub struct AuditStream {
    tx: broadcast::Sender<AuditNotice>,
    /// Whether the LISTEN connection is up (readiness, tests).
    listening: Arc<AtomicBool>,
}

impl Default for AuditStream {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditStream {
    /// A stream with no listener yet (see [`AuditStream::listen`]).
    pub fn new() -> Self {
        // A subscriber that lags past this many notices gets `Lagged` and resynchronises from
        // the table: memory stays bounded and nothing is lost.
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            listening: Arc::default(),
        }
    }

    /// Whether this instance currently listens for notices.
    pub fn is_listening(&self) -> bool {
        AtomicBool::load(&self.listening, Ordering::SeqCst)
    }

    /// Receive notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<AuditNotice> {
        self.tx.subscribe()
    }

    /// Run the listening loop against `database_url` until the task is aborted: connect,
    /// `LISTEN`, rebroadcast; on any failure reconnect with backoff and announce a resync.
    pub fn listen(&self, database_url: String) -> tokio::task::JoinHandle<()> {
        let tx = self.tx.clone();
        let listening = self.listening.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut connected_before = false;
            loop {
                let result =
                    listen_once(&database_url, &tx, &mut connected_before, &listening).await;
                listening.store(false, Ordering::SeqCst);
                match result {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(error) => tracing::warn!(%error, "audit LISTEN connection failed"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        })
    }
}

/// One connection's life: returns when it is lost.
async fn listen_once(
    url: &str,
    tx: &broadcast::Sender<AuditNotice>,
    connected_before: &mut bool,
    listening: &AtomicBool,
) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}"))
        .execute(&mut conn)
        .await?;
    listening.store(true, Ordering::SeqCst);
    if *connected_before {
        tracing::info!("audit LISTEN connection re-established: subscribers resynchronise");
        let _ = tx.send(AuditNotice::Resync);
    }
    *connected_before = true;
    loop {
        let next = {
            let mut notifications = pin!(conn.notifications_stream());
            tokio::time::timeout(HEALTH_CHECK, notifications.next()).await
        };
        match next {
            Ok(Some(Ok(notification))) => match parse_payload(&notification.payload) {
                Some(notice) => {
                    let _ = tx.send(notice);
                }
                None => {
                    tracing::warn!(payload = %notification.payload, "unexpected fv_audit payload")
                }
            },
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(None) => anyhow::bail!("the notification stream ended"),
            // Quiet: make sure the connection is still alive.
            Err(_) => {
                diesel::sql_query("SELECT 1").execute(&mut conn).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let org = Uuid::new_v4();
        assert_eq!(
            parse_payload(&format!("{org}:42")),
            Some(AuditNotice::Event {
                organization_id: Some(org),
                sequence: 42
            })
        );
        assert_eq!(
            parse_payload(":7"),
            Some(AuditNotice::Event {
                organization_id: None,
                sequence: 7
            })
        );
        assert_eq!(parse_payload("nonsense"), None);
    }
}
