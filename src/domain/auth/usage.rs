//! `last_used_at` of API keys and sessions, coalesced in memory: a busy client would otherwise
//! write its credential's row on every request. [`flush_usage`] writes everything noted so far
//! with one statement per table.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{
    domain::Core,
    error::{AppError, AppResult},
};

/// Uses noted since the last flush: credential id → latest use.
#[derive(Debug, Default)]
pub struct KeyUsage(Mutex<HashMap<Uuid, DateTime<Utc>>>);

/// Shared so that every clone of the core notes uses in the same map.
pub(crate) type SharedKeyUsage = Arc<KeyUsage>;

impl KeyUsage {
    /// Note that `id` was used at `at` (the latest use wins).
    pub fn touch(&self, id: Uuid, at: DateTime<Utc>) {
        // A poisoned lock only means another thread panicked mid-insert: the map is still usable.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(id).or_insert(at);
        if *entry < at {
            *entry = at;
        }
    }

    fn take(&self) -> HashMap<Uuid, DateTime<Utc>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Write the noted uses with `sql` (`$1` ids, `$2` times); on failure they are noted again
    /// for the next flush. Returns how many were written.
    async fn flush(&self, core: &Core, sql: &'static str) -> AppResult<usize> {
        let noted = self.take();
        if noted.is_empty() {
            return Ok(0);
        }
        let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) =
            noted.iter().map(|(id, at)| (*id, *at)).unzip();
        let result = async {
            let mut conn = core.db.conn().await?;
            diesel::sql_query(sql)
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Array<Timestamptz>, _>(&times)
                .execute(&mut conn)
                .await?;
            Ok::<_, AppError>(())
        }
        .await;
        if let Err(err) = result {
            for (id, at) in noted {
                self.touch(id, at);
            }
            return Err(err);
        }
        Ok(ids.len())
    }
}

/// Write the noted uses of API keys and sessions to their `last_used_at`, one
/// `UPDATE … FROM unnest(…)` per table; returns how many credentials were noted.
#[tracing::instrument(skip_all)]
pub async fn flush_usage(core: &Core) -> AppResult<usize> {
    let keys = core
        .api_key_usage
        .flush(
            core,
            "UPDATE api_keys SET last_used_at = GREATEST(api_keys.last_used_at, u.used_at) \
             FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, used_at) \
             WHERE api_keys.id = u.id",
        )
        .await;
    let sessions = core
        .session_usage
        .flush(
            core,
            "UPDATE sessions SET last_used_at = GREATEST(sessions.last_used_at, u.used_at) \
             FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, used_at) \
             WHERE sessions.id = u.id",
        )
        .await;
    Ok(keys? + sessions?)
}

/// Flush usage every `period` until the process ends (`main` flushes once more on shutdown).
#[tracing::instrument(skip_all)]
pub async fn flush_usage_every(core: Core, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = flush_usage(&core).await {
            tracing::warn!(error = %err, "flushing credential usage failed; retrying later");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_keeps_the_latest_time_per_key() {
        let usage = KeyUsage::default();
        let key = Uuid::new_v4();
        let early = Utc::now();
        let late = early + chrono::Duration::seconds(5);
        usage.touch(key, late);
        usage.touch(key, early);
        let taken = usage.take();
        assert_eq!(taken.get(&key), Some(&late));
        assert!(usage.take().is_empty());
    }
}
