//! The caller cache: a credential's SHA-256 → the [`Viewer`] it resolved to (roles included), so
//! that a request from a known caller costs no statement to authenticate.
//!
//! What keeps it right:
//! - **Bounded.** At most `FV_CALLER_CACHE_SIZE` entries, each for at most
//!   `FV_CALLER_CACHE_TTL_SECS`, and never past the credential's own expiry (checked on every
//!   hit). The session idle limit (`FV_SESSION_IDLE_HOURS`) is checked when an entry is filled:
//!   an entry may outlive it by at most the TTL, which is noise against a limit counted in hours.
//! - **Invalidated from the database.** Triggers (the `auth_notify` migration) notify `fv_auth`
//!   on every statement that can change what a credential resolves to; this instance's listening
//!   connection (`audit::stream`, through [`ChannelHandler`]) clears the whole cache on each.
//! - **Only while listening.** Hits are served only while that connection is up, and it clears
//!   the cache whenever it (re)connects, since notices may have been missed meanwhile.
//! - **No stale fill.** A miss reads the generation before it goes to the database and keeps its
//!   result only if no clear happened meanwhile: a lookup that raced a change is not cached.
//! - **Synchronous across instances.** A notice arrives asynchronously, after the commit, so
//!   another instance could serve a stale entry right after the revoking response. Every domain
//!   operation that changes credentials therefore runs through [`transaction`], which after the
//!   commit sends `fv_auth_sync` with a nonce and waits (at most [`SYNC_WAIT`]) until every live
//!   listener of the database — the `pg_stat_activity` rows named
//!   [`LISTENER_APPLICATION_NAME`] — answers on `fv_auth_ack`, which each does right after
//!   clearing its cache. Notices are delivered in commit order, so an answer also proves that
//!   every earlier invalidation was applied: the response leaves only once no instance can serve
//!   what the change revoked.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Integer, Text},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use tokio::sync::mpsc;

use super::viewer::Viewer;
use crate::{
    domain::{
        Core, TransactionBody,
        audit::stream::{ChannelHandler, LISTENER_APPLICATION_NAME},
    },
    error::AppResult,
};

/// Notified by the triggers: something a credential resolves to may have changed.
pub const INVALIDATE_CHANNEL: &str = "fv_auth";
/// Notified after a committed change: clear, then answer on [`ACK_CHANNEL`] with the payload.
pub const SYNC_CHANNEL: &str = "fv_auth_sync";
/// Every listener's answer to a [`SYNC_CHANNEL`] notice, with its nonce.
pub const ACK_CHANNEL: &str = "fv_auth_ack";

/// The longest a change waits for every listener's answer; past it, it logs a warning and
/// answers anyway (an instance that cannot answer is unreachable or stuck; its own listener's
/// health check stops it serving hits within seconds, and the TTL bounds the rest).
pub const SYNC_WAIT: Duration = Duration::from_secs(2);

/// What a credential lookup found: the viewer and when the credential itself expires.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Who the credential stands for, with its roles.
    pub viewer: Viewer,
    /// The credential's own expiry (`None`: an API key without one).
    pub expires_at: Option<DateTime<Utc>>,
}

/// SHA-256 of a token.
type TokenHash = [u8; 32];

/// This instance's cache of callers. Cheap to clone.
#[derive(Clone)]
pub struct CallerCache(Arc<Inner>);

struct Inner {
    /// `None`: disabled (`FV_CALLER_CACHE_SIZE=0`); invalidations and syncs are still answered.
    entries: Option<moka::sync::Cache<TokenHash, Credential>>,
    /// Bumped by every clear. Clears and fills take this lock, so a fill that checked the
    /// generation cannot insert after a clear that followed its check.
    generation: Mutex<u64>,
    /// Whether this instance's listening connection is up (hits are served only then).
    listening: AtomicBool,
    /// Changes waiting for answers: nonce → where to send the answering backends' pids.
    waiters: Mutex<HashMap<String, mpsc::UnboundedSender<i32>>>,
}

impl CallerCache {
    /// A cache of at most `size` callers kept at most `ttl` each; `size == 0` disables it.
    pub fn new(size: u64, ttl: Duration) -> Self {
        let entries = (size > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(size)
                .time_to_live(ttl)
                .build()
        });
        Self(Arc::new(Inner {
            entries,
            generation: Mutex::new(0),
            listening: AtomicBool::new(false),
            waiters: Mutex::default(),
        }))
    }

    /// The viewer of the token with SHA-256 `hash`: from the cache, else from `load` (which is
    /// then kept unless a clear happened while it ran). `None`: the credential does not work.
    pub(crate) async fn resolve(
        &self,
        hash: &[u8],
        load: impl Future<Output = AppResult<Option<Credential>>>,
    ) -> AppResult<Option<Viewer>> {
        let Ok(key) = TokenHash::try_from(hash) else {
            return Ok(load.await?.map(|found| found.viewer));
        };
        if let Some(viewer) = self.hit(&key) {
            metrics::counter!("fv_caller_cache_hits_total").increment(1);
            return Ok(Some(viewer));
        }
        metrics::counter!("fv_caller_cache_misses_total").increment(1);
        let generation = self.generation();
        // Failures (unknown, expired, revoked) are not cached: a new token is never
        // mistaken for one, and garbage tokens cannot fill the cache.
        let found = load.await?;
        if let Some(found) = &found {
            self.fill(generation, key, found.clone());
        }
        Ok(found.map(|found| found.viewer))
    }

    fn hit(&self, key: &TokenHash) -> Option<Viewer> {
        let entries = self.0.entries.as_ref()?;
        if !self.listening() {
            return None;
        }
        let cached = entries.get(key)?;
        if cached.expires_at.is_some_and(|at| at <= Utc::now()) {
            entries.invalidate(key);
            return None;
        }
        Some(cached.viewer)
    }

    fn listening(&self) -> bool {
        // Spelled out: `RunQueryDsl::load` is in scope.
        AtomicBool::load(&self.0.listening, Ordering::SeqCst)
    }

    fn generation(&self) -> u64 {
        *self
            .0
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fill(&self, read_at: u64, key: TokenHash, found: Credential) {
        let Some(entries) = &self.0.entries else {
            return;
        };
        let generation = self
            .0
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Not listening: no notice would clear it (the reconnect clears anyway).
        if *generation == read_at && self.listening() {
            entries.insert(key, found);
        }
    }

    /// Forget every caller (and refuse the fills that started before).
    pub fn clear(&self) {
        let mut generation = self
            .0
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *generation += 1;
        if let Some(entries) = &self.0.entries {
            entries.invalidate_all();
        }
    }

    /// Whether a request with `token` would be answered from the cache now (tests).
    pub fn holds(&self, token: &str) -> bool {
        TokenHash::try_from(super::sessions::token_hash(token).as_slice())
            .is_ok_and(|key| self.hit(&key).is_some())
    }

    /// After a committed change to credentials: clear here, notify every listener of the
    /// database on [`SYNC_CHANNEL`] and wait (at most [`SYNC_WAIT`]) for all their answers.
    /// Never fails: the change is committed; a listener that does not answer is logged.
    #[tracing::instrument(skip_all)]
    async fn settle(&self, conn: &mut AsyncPgConnection, behind_pooler: bool) {
        self.clear();
        let nonce = {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        let (tx, mut answers) = mpsc::unbounded_channel();
        self.waiters().insert(nonce.clone(), tx);
        let waited = async {
            // Behind a transaction pooler a statement is only safe inside a transaction (see
            // `db::pool`); the notice leaves at its COMMIT, right after the count.
            let listeners = if behind_pooler {
                AsyncConnection::transaction(conn, async |conn| {
                    live_listeners_notified(conn, &nonce).await
                })
                .await?
            } else {
                live_listeners_notified(conn, &nonce).await?
            };
            let mut missing: HashSet<i32> = listeners.into_iter().collect();
            let answered = tokio::time::timeout(SYNC_WAIT, async {
                while !missing.is_empty() {
                    match answers.recv().await {
                        Some(pid) => {
                            missing.remove(&pid);
                        }
                        None => break,
                    }
                }
            })
            .await;
            Ok::<_, crate::error::AppError>((answered.is_ok(), missing.len()))
        }
        .await;
        self.waiters().remove(&nonce);
        match waited {
            Ok((true, _)) => {}
            Ok((false, missing)) => tracing::warn!(
                missing,
                "credential change: not every instance confirmed its cache was cleared within {SYNC_WAIT:?}"
            ),
            Err(error) => {
                tracing::warn!(%error, "credential change: could not ask the instances to clear their caches")
            }
        }
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<i32>>> {
        self.0
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(QueryableByName)]
struct Listeners {
    #[diesel(sql_type = Array<Integer>)]
    pids: Vec<i32>,
}

/// Notify [`SYNC_CHANNEL`] with `nonce` and return the backends that will answer: the live
/// listeners of this database, read in the same statement (a listener is named only once it
/// listens, so each one counted receives the notice; one connecting later clears on connect).
async fn live_listeners_notified(conn: &mut AsyncPgConnection, nonce: &str) -> AppResult<Vec<i32>> {
    let found: Listeners = diesel::sql_query(
        "SELECT pg_notify($3, $1)::text AS sent, \
                array(SELECT pid FROM pg_stat_activity \
                      WHERE application_name = $2 AND datname = current_database()) AS pids",
    )
    .bind::<Text, _>(nonce)
    .bind::<Text, _>(LISTENER_APPLICATION_NAME)
    .bind::<Text, _>(SYNC_CHANNEL)
    .get_result(conn)
    .await?;
    Ok(found.pids)
}

impl ChannelHandler for CallerCache {
    fn channels(&self) -> &'static [&'static str] {
        &[INVALIDATE_CHANNEL, SYNC_CHANNEL, ACK_CHANNEL]
    }

    fn connected(&self) {
        self.clear();
        self.0.listening.store(true, Ordering::SeqCst);
    }

    fn disconnected(&self) {
        self.0.listening.store(false, Ordering::SeqCst);
    }

    fn notice(
        &self,
        channel: &str,
        payload: &str,
        sender_pid: i32,
    ) -> Option<(&'static str, String)> {
        match channel {
            INVALIDATE_CHANNEL => {
                self.clear();
                None
            }
            SYNC_CHANNEL => {
                self.clear();
                Some((ACK_CHANNEL, payload.to_owned()))
            }
            ACK_CHANNEL => {
                if let Some(waiter) = self.waiters().get(payload) {
                    let _ = waiter.send(sender_pid);
                }
                None
            }
            _ => None,
        }
    }
}

/// Run a change to what credentials resolve to (sessions, users, memberships, API keys,
/// organizations' liveness) as one transaction, then settle it: once this returns, no instance
/// serves a cached caller the change affected (see the module docs; bounded by [`SYNC_WAIT`]).
/// The one place every such operation goes through.
pub(crate) async fn transaction<R, F>(core: &Core, body: F) -> AppResult<R>
where
    R: Send,
    F: for<'r> TransactionBody<'r, R> + Send,
{
    let mut conn = core.db.conn_for_transaction().await?;
    let out = crate::domain::in_transaction(&core.db, &mut conn, body).await?;
    core.db.note_commit(&mut conn).await;
    core.caller_cache
        .settle(&mut conn, core.db.behind_transaction_pooler())
        .await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::Roles;
    use uuid::Uuid;

    fn credential(expires_at: Option<DateTime<Utc>>) -> Credential {
        Credential {
            viewer: Viewer::User {
                user_id: Uuid::new_v4(),
                session_id: Uuid::new_v4(),
                is_superadmin: false,
                roles: Roles::default(),
            },
            expires_at,
        }
    }

    fn listening(size: u64) -> CallerCache {
        let cache = CallerCache::new(size, Duration::from_secs(60));
        cache.connected();
        cache
    }

    async fn resolve(cache: &CallerCache, hash: &[u8], found: &Credential) -> bool {
        let loaded = std::cell::Cell::new(false);
        cache
            .resolve(hash, async {
                loaded.set(true);
                Ok(Some(found.clone()))
            })
            .await
            .unwrap();
        loaded.get()
    }

    #[tokio::test]
    async fn a_second_lookup_is_a_hit_until_cleared() {
        let cache = listening(10);
        let found = credential(None);
        assert!(resolve(&cache, &[1; 32], &found).await, "cold");
        assert!(!resolve(&cache, &[1; 32], &found).await, "warm");
        cache.notice(INVALIDATE_CHANNEL, "", 1);
        assert!(resolve(&cache, &[1; 32], &found).await, "cleared");
    }

    #[tokio::test]
    async fn no_hit_while_not_listening_nor_past_the_credentials_expiry() {
        let cache = listening(10);
        let found = credential(None);
        resolve(&cache, &[1; 32], &found).await;
        cache.disconnected();
        assert!(resolve(&cache, &[1; 32], &found).await, "not listening");
        cache.connected();
        let expired = credential(Some(Utc::now() - chrono::Duration::seconds(1)));
        resolve(&cache, &[2; 32], &expired).await;
        assert!(resolve(&cache, &[2; 32], &expired).await, "expired");
    }

    #[tokio::test]
    async fn a_lookup_that_raced_a_clear_is_not_kept() {
        let cache = listening(10);
        let found = credential(None);
        cache
            .resolve(&[1; 32], async {
                // An invalidation arrives while the database is being read.
                cache.notice(INVALIDATE_CHANNEL, "", 1);
                Ok(Some(found.clone()))
            })
            .await
            .unwrap();
        assert!(resolve(&cache, &[1; 32], &found).await, "not kept");
    }

    #[tokio::test]
    async fn size_zero_disables_it() {
        let cache = listening(0);
        let found = credential(None);
        resolve(&cache, &[1; 32], &found).await;
        assert!(resolve(&cache, &[1; 32], &found).await);
        assert_eq!(
            cache.notice(SYNC_CHANNEL, "n", 1),
            Some((ACK_CHANNEL, "n".to_owned())),
            "a disabled cache still answers syncs"
        );
    }
}
