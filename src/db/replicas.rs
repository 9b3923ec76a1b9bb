//! Hot standbys that serve reads (FV_DATABASE_REPLICA_URLS): one monitor task reads every
//! database's WAL position, from which it knows each replica's lag and health and whether the
//! primary answers; a read that must see a write (its commit LSN) takes a replica that has
//! replayed it, waits briefly for one, or goes to the primary.
//!
//! Lag is measured in time, not only bytes: the monitor keeps the primary's recent positions
//! with the instant it saw each, and a replica that has replayed up to `R` lags by the age of
//! the oldest sample past `R`. An idle primary therefore never makes a replica look late, and a
//! busy one shows the delay its clients would see.

use std::{
    collections::VecDeque,
    fmt,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::pool::ConnPool;

/// A position in the write-ahead log (`pg_lsn`), as PostgreSQL prints it: `16/B374D848`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = ();

    /// Two hexadecimal halves of at most 8 digits each, split by `/`.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (high, low) = text.trim().split_once('/').ok_or(())?;
        let half = |part: &str| {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
            u32::from_str_radix(part, 16).map_err(|_| ())
        };
        Ok(Lsn((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The replica settings (see the `FV_REPLICA_*` flags).
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// A replica further behind than this serves nothing.
    pub max_lag: Duration,
    /// How long a read waits for a replica to replay the write it must see.
    pub wait: Duration,
    /// How often the monitor reads every position.
    pub poll: Duration,
    /// How long after a credential's write its reads on this instance must see it.
    pub read_your_writes: Duration,
}

/// What the monitor last learnt of a replica.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplicaState {
    /// Unreachable (or never reached yet): skipped.
    Down = 0,
    /// Answers but lags by more than the bound: skipped.
    Lagging = 1,
    /// Serves reads.
    Up = 2,
}

impl ReplicaState {
    fn from_u8(value: u8) -> Self {
        match value {
            2 => Self::Up,
            1 => Self::Lagging,
            _ => Self::Down,
        }
    }

    /// As `/readyz` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Lagging => "lagging",
            Self::Down => "down",
        }
    }
}

/// One hot standby.
pub(crate) struct Replica {
    /// `host:port/database`, without credentials: what logs, metrics and `/readyz` show.
    pub(crate) name: String,
    url: String,
    pub(crate) pool: ConnPool,
    replayed: AtomicU64,
    state: AtomicU8,
    lag_ms: AtomicU64,
    lag_bytes: AtomicU64,
}

/// A replica as `/readyz` reports it.
#[derive(Debug, Clone)]
pub struct ReplicaStatus {
    /// `host:port/database`.
    pub name: String,
    /// Whether it serves reads.
    pub state: ReplicaState,
    /// How far behind the primary it is, in time (`None` while down).
    pub lag: Option<Duration>,
    /// How far behind the primary's position its replay is, in bytes.
    pub lag_bytes: u64,
    /// The position it has replayed.
    pub replayed: Lsn,
}

/// The replicas of one primary, with what the monitor knows of each.
pub(crate) struct ReplicaSet {
    pub(crate) replicas: Vec<Replica>,
    primary_url: String,
    primary_up: AtomicBool,
    /// The same, for checkouts waiting on the primary: they give up when it goes down.
    primary_watch: tokio::sync::watch::Sender<bool>,
    /// The primary's positions with the instant each was read, oldest first, bounded.
    samples: Mutex<VecDeque<(Lsn, Instant)>>,
    pub(crate) options: ReplicaOptions,
    next: AtomicUsize,
    /// The last commit of each credential (session or API key) within the read-your-writes
    /// window.
    recent: moka::sync::Cache<Uuid, Lsn>,
}

/// How many primary positions the lag estimate keeps: at one per poll, enough to measure a lag
/// well past any sensible bound (1,024 × 100 ms ≈ 100 s).
const SAMPLES: usize = 1024;

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Text)]
    lsn: String,
}

/// A replica's replayed position, or on a promoted one (no longer in recovery) its current one:
/// it is a primary now, as fresh as any.
const REPLAYED: &str = "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                        ELSE pg_current_wal_lsn() END)::text AS lsn";
pub(crate) const CURRENT: &str = "SELECT pg_current_wal_lsn()::text AS lsn";

/// Read one position with `sql` (`REPLAYED` or `CURRENT`).
pub(crate) async fn position(conn: &mut AsyncPgConnection, sql: &str) -> Option<Lsn> {
    // In scope here only: its `load` would shadow the atomics' elsewhere in this file.
    use diesel_async::RunQueryDsl;
    let row: Position = diesel::sql_query(sql).get_result(conn).await.ok()?;
    row.lsn.parse().ok()
}

/// `host:port/database` of a PostgreSQL URL, or a placeholder: never its credentials.
pub(crate) fn display_name(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}:{}{}",
            parsed.host_str().unwrap_or("localhost"),
            parsed.port().unwrap_or(5432),
            parsed.path()
        ),
        Err(_) => "replica".to_owned(),
    }
}

impl ReplicaSet {
    pub(crate) fn new(
        primary_url: String,
        replicas: Vec<(String, ConnPool)>,
        options: ReplicaOptions,
    ) -> Self {
        Self {
            replicas: replicas
                .into_iter()
                .map(|(url, pool)| Replica {
                    name: display_name(&url),
                    url,
                    pool,
                    replayed: AtomicU64::new(0),
                    state: AtomicU8::new(ReplicaState::Down as u8),
                    lag_ms: AtomicU64::new(0),
                    lag_bytes: AtomicU64::new(0),
                })
                .collect(),
            primary_url,
            // Until the monitor says otherwise: the pool has just connected to it.
            primary_up: AtomicBool::new(true),
            primary_watch: tokio::sync::watch::Sender::new(true),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            recent: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(options.read_your_writes)
                .build(),
            options,
            next: AtomicUsize::new(0),
        }
    }

    /// Whether the primary answered the monitor's last probe.
    pub(crate) fn primary_up(&self) -> bool {
        self.primary_up.load(Ordering::Relaxed)
    }

    /// Resolves once the monitor finds the primary down: a checkout that started while it was
    /// up (and would wait a whole pool timeout for a connection that cannot open) gives up then.
    pub(crate) async fn primary_down(&self) {
        let mut watch = self.primary_watch.subscribe();
        let _ = watch.wait_for(|up| !*up).await;
    }

    fn state(&self, index: usize) -> ReplicaState {
        ReplicaState::from_u8(self.replicas[index].state.load(Ordering::Relaxed))
    }

    /// What is known of every replica.
    pub(crate) fn statuses(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .enumerate()
            .map(|(index, replica)| {
                let state = self.state(index);
                ReplicaStatus {
                    name: replica.name.clone(),
                    state,
                    lag: (state != ReplicaState::Down)
                        .then(|| Duration::from_millis(replica.lag_ms.load(Ordering::Relaxed))),
                    lag_bytes: replica.lag_bytes.load(Ordering::Relaxed),
                    replayed: Lsn(replica.replayed.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }

    /// Remember that `credential` committed at `lsn`: its reads on this instance must see it
    /// for the read-your-writes window.
    pub(crate) fn note_write(&self, credential: Uuid, lsn: Lsn) {
        self.recent
            .entry(credential)
            .and_upsert_with(|current| current.map_or(lsn, |e| (*e.value()).max(lsn)));
    }

    /// The last commit of `credential` within the window.
    pub(crate) fn recent_write(&self, credential: Uuid) -> Option<Lsn> {
        self.recent.get(&credential)
    }

    /// The replicas that serve reads, starting at the next in turn (round robin).
    pub(crate) fn candidates(&self) -> Vec<usize> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| (start + i) % count)
            .filter(|&i| self.state(i) == ReplicaState::Up)
            .collect()
    }

    /// Whether replica `index` is known to have replayed `floor`.
    pub(crate) fn has_replayed(&self, index: usize, floor: Option<Lsn>) -> bool {
        floor.is_none_or(|floor| self.replicas[index].replayed.load(Ordering::Relaxed) >= floor.0)
    }

    /// A replica's checkout failed: skip it until the monitor reaches it again.
    pub(crate) fn mark_down(&self, index: usize) {
        let replica = &self.replicas[index];
        if replica
            .state
            .swap(ReplicaState::Down as u8, Ordering::Relaxed)
            != ReplicaState::Down as u8
        {
            tracing::warn!(replica = %replica.name, "replica unreachable: reads go elsewhere");
        }
    }

    /// Wait on `conn` (of replica `index`) until it has replayed `floor`, for at most the
    /// configured wait; true when it has. Each check is one statement on the replica.
    pub(crate) async fn await_replay(
        &self,
        conn: &mut AsyncPgConnection,
        index: usize,
        floor: Lsn,
    ) -> bool {
        let started = Instant::now();
        let deadline = started + self.options.wait;
        loop {
            let Some(replayed) = position(conn, REPLAYED).await else {
                return false;
            };
            self.replicas[index]
                .replayed
                .fetch_max(replayed.0, Ordering::Relaxed);
            if replayed >= floor {
                metrics::histogram!("fv_db_replica_wait_seconds")
                    .record(started.elapsed().as_secs_f64());
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            // Replay on a healthy standby takes well under a millisecond per commit; a short
            // sleep keeps the checks cheap without adding much to the wait.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Watch every database until the set is dropped (the task holds only a weak reference).
    pub(crate) fn spawn_monitor(self: &Arc<Self>) {
        let set = Arc::downgrade(self);
        let poll = self.options.poll;
        tokio::spawn(async move {
            let mut primary: Option<AsyncPgConnection> = None;
            let mut replicas: Vec<Option<AsyncPgConnection>> = Vec::new();
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(set) = set.upgrade() else { return };
                replicas.resize_with(set.replicas.len(), || None);
                set.observe(&mut primary, &mut replicas).await;
            }
        });
    }

    /// One round of the monitor: the primary's position, then each replica's.
    async fn observe(
        &self,
        primary: &mut Option<AsyncPgConnection>,
        replicas: &mut [Option<AsyncPgConnection>],
    ) {
        // A probe that takes longer than this counts as a failure: a database that slow serves
        // nobody well, and the monitor must keep its pace.
        let patience = self.options.poll.max(Duration::from_millis(500));
        let now = Instant::now();
        let primary_lsn = probe(primary, &self.primary_url, CURRENT, patience).await;
        let was_up = self
            .primary_up
            .swap(primary_lsn.is_some(), Ordering::Relaxed);
        self.primary_watch.send_if_modified(|up| {
            let changed = *up != primary_lsn.is_some();
            *up = primary_lsn.is_some();
            changed
        });
        if was_up != primary_lsn.is_some() {
            if was_up {
                tracing::warn!("the primary does not answer: writes fail fast, reads use replicas");
            } else {
                tracing::info!("the primary answers again");
            }
        }
        metrics::gauge!("fv_db_primary_up").set(if primary_lsn.is_some() { 1.0 } else { 0.0 });
        let (latest, oldest_past) = {
            let mut samples = self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(lsn) = primary_lsn {
                if samples.len() == SAMPLES {
                    samples.pop_front();
                }
                samples.push_back((lsn, now));
            }
            let latest = samples.back().map(|(lsn, _)| *lsn);
            let snapshot: Vec<(Lsn, Instant)> = samples.iter().copied().collect();
            (latest, snapshot)
        };
        for (index, replica) in self.replicas.iter().enumerate() {
            let Some(replayed) =
                probe(&mut replicas[index], &replica.url, REPLAYED, patience).await
            else {
                self.mark_down(index);
                metrics::gauge!("fv_db_replica_up", "replica" => replica.name.clone()).set(0.0);
                continue;
            };
            replica.replayed.fetch_max(replayed.0, Ordering::Relaxed);
            // The oldest primary position the replica lacks tells how long ago it fell behind.
            let lag = oldest_past
                .iter()
                .find(|(lsn, _)| *lsn > replayed)
                .map_or(Duration::ZERO, |(_, seen)| {
                    now.saturating_duration_since(*seen)
                });
            let lag_bytes = latest.map_or(0, |latest| latest.0.saturating_sub(replayed.0));
            let lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
            replica.lag_ms.store(lag_ms, Ordering::Relaxed);
            replica.lag_bytes.store(lag_bytes, Ordering::Relaxed);
            let state = if lag > self.options.max_lag {
                ReplicaState::Lagging
            } else {
                ReplicaState::Up
            };
            let before = replica.state.swap(state as u8, Ordering::Relaxed);
            if before != state as u8 {
                tracing::info!(replica = %replica.name, state = state.as_str(), lag_ms, "replica state");
            }
            let name = replica.name.clone();
            metrics::gauge!("fv_db_replica_up", "replica" => name.clone())
                .set(if state == ReplicaState::Up { 1.0 } else { 0.0 });
            metrics::gauge!("fv_db_replica_lag_seconds", "replica" => name.clone())
                .set(lag.as_secs_f64());
            #[allow(
                clippy::cast_precision_loss,
                reason = "a gauge holds an f64; a lag of 2^53 bytes is not a lag"
            )]
            metrics::gauge!("fv_db_replica_lag_bytes", "replica" => name).set(lag_bytes as f64);
        }
    }
}

/// Read a position on the monitor's own connection to `url` (outside every pool, so it counts
/// in no statement total and waits for no request), connecting first if needed; `None` when the
/// database does not answer within `patience`, and the connection is dropped.
async fn probe(
    conn: &mut Option<AsyncPgConnection>,
    url: &str,
    sql: &str,
    patience: Duration,
) -> Option<Lsn> {
    let attempt = async {
        if conn.is_none() {
            *conn = Some(AsyncPgConnection::establish(url).await.ok()?);
        }
        position(conn.as_mut()?, sql).await
    };
    let lsn = tokio::time::timeout(patience, attempt).await.ok().flatten();
    if lsn.is_none() {
        *conn = None;
    }
    lsn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_print_as_postgresql_does() {
        for text in ["0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            let lsn: Lsn = text.parse().unwrap();
            assert_eq!(lsn.to_string(), text);
        }
        assert_eq!("1/0".parse::<Lsn>().unwrap(), Lsn(1 << 32));
        assert_eq!("0/a".parse::<Lsn>().unwrap(), Lsn(10));
        assert!("0/10".parse::<Lsn>().unwrap() > "0/F".parse::<Lsn>().unwrap());
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "0/0/0",
            "G/0",
            "0/-1",
            "+1/0",
            "100000000/0",
            "0 /1",
        ] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn display_names_carry_no_credentials() {
        assert_eq!(
            display_name("postgres://app:secret@standby.internal:5433/finvision"),
            "standby.internal:5433/finvision"
        );
        assert_eq!(display_name("not a url"), "replica");
    }
}
