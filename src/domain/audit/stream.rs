//! Fan-out of audit events across server instances: one dedicated connection per instance
//! (outside the pool: pooled connections are recycled, and a LISTEN is session state) listens on
//! the `fv_audit` channel, which a trigger notifies on every committed insert, and rebroadcasts
//! each notice in-process. Notices only say "something new in organization X"; subscribers read
//! the events themselves from the table by sequence, so a lost or late notice never loses an
//! event: after a reconnect the instance broadcasts [`AuditNotice::Resync`] and every subscriber
//! catches up from the last sequence it delivered.
//!
//! Other parts of the domain may ride on the same connection with a [`ChannelHandler`] (the
//! caller cache's invalidations, `auth::cache`): this module only routes their notices and sends
//! their replies, and knows nothing of what they mean.

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

/// The `application_name` of every instance's listening connection, set once it LISTENs on
/// every channel: `pg_stat_activity` rows with this name on a database are exactly the live
/// listeners of that database (`auth::cache` counts them to know whose answers to wait for).
pub const LISTENER_APPLICATION_NAME: &str = "finvision-listener";

/// How long the health check of an idle connection may take before the connection is
/// considered lost: a silently dead peer must not keep the instance believing it listens.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Another part of the domain listening on this instance's connection.
pub trait ChannelHandler: Send + Sync + 'static {
    /// The channels it listens on (never [`CHANNEL`]).
    fn channels(&self) -> &'static [&'static str];
    /// The connection listens (again) on every channel: notices may have been missed before.
    fn connected(&self);
    /// The connection was lost: no notice arrives until [`ChannelHandler::connected`].
    fn disconnected(&self);
    /// A notice on one of its channels from backend `sender_pid`; a returned `(channel,
    /// payload)` is notified on the same connection once this returns, so it follows everything
    /// the handler did in delivery order.
    fn notice(
        &self,
        channel: &str,
        payload: &str,
        sender_pid: i32,
    ) -> Option<(&'static str, String)>;
}

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
    /// The other channels' handlers.
    handlers: Vec<Arc<dyn ChannelHandler>>,
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
            handlers: Vec::new(),
        }
    }

    /// The same stream, also listening for `handler`'s channels (before [`AuditStream::listen`]).
    #[must_use]
    pub fn with_handler(mut self, handler: Arc<dyn ChannelHandler>) -> Self {
        self.handlers.push(handler);
        self
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
        let this = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut connected_before = false;
            loop {
                let result = this.listen_once(&database_url, &mut connected_before).await;
                // A connection that listened before it was lost starts the backoff over: the
                // next outage is new, and its first retries should be quick.
                if this.listening.swap(false, Ordering::SeqCst) {
                    backoff = Duration::from_millis(100);
                }
                for handler in &this.handlers {
                    handler.disconnected();
                }
                if let Err(error) = result {
                    tracing::warn!(%error, "audit LISTEN connection failed");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        })
    }
}

impl AuditStream {
    /// One connection's life: returns when it is lost.
    async fn listen_once(&self, url: &str, connected_before: &mut bool) -> anyhow::Result<()> {
        let mut conn = AsyncPgConnection::establish(url).await?;
        diesel::sql_query(format!("LISTEN {CHANNEL}"))
            .execute(&mut conn)
            .await?;
        for handler in &self.handlers {
            for channel in handler.channels() {
                diesel::sql_query(format!("LISTEN {channel}"))
                    .execute(&mut conn)
                    .await?;
            }
        }
        // Named only now that it listens on everything: whoever counts listeners by this name
        // counts connections that receive their notices. The handlers are told only then, so
        // that nothing relies on this connection before others can count it.
        diesel::sql_query(format!(
            "SET application_name = '{LISTENER_APPLICATION_NAME}'"
        ))
        .execute(&mut conn)
        .await?;
        for handler in &self.handlers {
            handler.connected();
        }
        self.listening.store(true, Ordering::SeqCst);
        if *connected_before {
            tracing::info!("audit LISTEN connection re-established: subscribers resynchronise");
            let _ = self.tx.send(AuditNotice::Resync);
        }
        *connected_before = true;
        loop {
            let next = {
                let mut notifications = pin!(conn.notifications_stream());
                tokio::time::timeout(HEALTH_CHECK, notifications.next()).await
            };
            match next {
                Ok(Some(Ok(notification))) if notification.channel == CHANNEL => {
                    match parse_payload(&notification.payload) {
                        Some(notice) => {
                            let _ = self.tx.send(notice);
                        }
                        None => {
                            tracing::warn!(payload = %notification.payload, "unexpected fv_audit payload")
                        }
                    }
                }
                Ok(Some(Ok(notification))) => {
                    let handler = self
                        .handlers
                        .iter()
                        .find(|h| h.channels().contains(&notification.channel.as_str()));
                    let reply = handler.and_then(|h| {
                        h.notice(
                            &notification.channel,
                            &notification.payload,
                            notification.process_id,
                        )
                    });
                    if let Some((channel, payload)) = reply {
                        let reply = diesel::sql_query("SELECT pg_notify($1, $2)")
                            .bind::<diesel::sql_types::Text, _>(channel)
                            .bind::<diesel::sql_types::Text, _>(payload);
                        tokio::time::timeout(HEALTH_CHECK_TIMEOUT, reply.execute(&mut conn))
                            .await
                            .map_err(|_| anyhow::anyhow!("a reply timed out"))??;
                    }
                }
                Ok(Some(Err(error))) => return Err(error.into()),
                Ok(None) => anyhow::bail!("the notification stream ended"),
                // Quiet: make sure the connection is still alive.
                Err(_) => {
                    tokio::time::timeout(
                        HEALTH_CHECK_TIMEOUT,
                        diesel::sql_query("SELECT 1").execute(&mut conn),
                    )
                    .await
                    .map_err(|_| anyhow::anyhow!("the health check timed out"))??;
                }
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
