//! Attempt limits that hold under concurrency: sign-in failures per account and per address, and
//! registrations per address. Every limit counts audit rows, so it holds across instances; each
//! check runs inside the attempt's transaction after a transaction-scoped advisory lock on the
//! account (or address), so parallel attempts are counted one after another: N parallel wrong
//! passwords count N, and no attempt is verified past the limit.
//!
//! The lock is held while argon2 runs (tens of milliseconds), together with a pooled connection.
//! That is the simplest correct way: releasing the lock before verifying would let parallel
//! attempts all pass the count again. What it costs is one connection per account being
//! attacked at a time, and the in-process [`AttemptGate`] keeps it at one: attempts queue on an
//! async mutex before they take a connection, so a burst on one account cannot drain the pool.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
};

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ipnet::IpNet;
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

use super::viewer::Caller;
use crate::{
    domain::{
        audit::{AuditEntry, record},
        limits::address_bucket,
    },
    error::{AppError, AppResult},
};

/// How many failed sign-ins [`LOCKOUT_WINDOW_MINUTES`] may hold (`FV_LOGIN_FAILURES_PER_*`).
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    /// Per account, before the account is locked (the right password included).
    pub per_account: u32,
    /// Per client address (an IPv6 /64).
    pub per_address: u32,
}
/// The sliding window of the sign-in limit.
pub const LOCKOUT_WINDOW_MINUTES: i64 = 15;

/// Stripes of the in-process gate: enough that unrelated accounts rarely share one.
const STRIPES: usize = 256;

/// In-process serialisation of attempts on one key (a fixed set of striped mutexes: bounded
/// memory, nothing to clean up; two keys on one stripe merely wait for each other).
pub struct AttemptGate([Mutex<()>; STRIPES]);

impl Default for AttemptGate {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Mutex::new(())))
    }
}

impl AttemptGate {
    /// Wait for the stripe of `key`; attempts on it proceed one at a time while the guard lives.
    pub async fn enter(&self, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0);
        self.0[stripe].lock().await
    }
}

/// The key that serialises sign-in attempts on an account: its normalised email, so unknown
/// emails serialise too (and an attacker cannot tell them apart by timing).
pub fn account_key(email: &str) -> String {
    format!("fv.login:{}", email.trim().to_lowercase())
}

/// What a failed sign-in's event records of the email it tried: a SHA-256 digest of the
/// normalised address, not the address. The per-account limit counts by it (unknown emails too,
/// so the lock-out says nothing about which accounts exist), and the hashed trail holds no email
/// that an erasure would have to remove.
pub fn account_digest(email_key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!(
        "fv.login:{}",
        email_key.trim().to_lowercase()
    )))
}

/// The key that serialises registrations from one address bucket.
pub fn register_key(bucket: IpNet) -> String {
    format!("fv.register:{bucket}")
}

/// Take the transaction-scoped advisory lock of `key` (released at commit or rollback).
async fn advisory_lock(conn: &mut AsyncPgConnection, key: &str) -> AppResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(key)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct RecentFailures {
    #[diesel(sql_type = BigInt)]
    by_account: i64,
    #[diesel(sql_type = BigInt)]
    by_address: i64,
}

fn locked_out() -> AppError {
    AppError::RateLimited(format!(
        "too many failed sign-in attempts: try again in {LOCKOUT_WINDOW_MINUTES} minutes"
    ))
}

/// Inside the attempt's transaction: lock the account, then refuse (`RateLimited`) when it or
/// the address already has too many recent failures. Must run before any verification.
#[tracing::instrument(skip_all)]
pub async fn check_sign_in(
    conn: &mut AsyncPgConnection,
    email_key: &str,
    ip: Option<IpAddr>,
    limits: SignInLimits,
) -> AppResult<()> {
    advisory_lock(conn, &account_key(email_key)).await?;
    // `<<=` matches every address of the bucket (an IPv6 /64), and the btree index on
    // `ip_address` serves it as a range.
    let failures: RecentFailures = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE new_values->>'account' = $1) AS by_account,
                count(*) FILTER (WHERE ip_address <<= $2) AS by_address
           FROM audit_events
          WHERE action = 'auth.login_failed'
            AND created_at > now() - make_interval(mins => $3::int)
            AND (new_values->>'account' = $1 OR ip_address <<= $2)",
    )
    .bind::<Text, _>(account_digest(email_key))
    .bind::<Nullable<diesel::sql_types::Inet>, _>(ip.map(address_bucket))
    .bind::<BigInt, _>(LOCKOUT_WINDOW_MINUTES)
    .get_result(conn)
    .await?;
    if failures.by_account >= i64::from(limits.per_account)
        || failures.by_address >= i64::from(limits.per_address)
    {
        return Err(locked_out());
    }
    Ok(())
}

/// Inside the attempt's transaction: write the `auth.login_failed` row the limits count.
/// `via` tells a wrong current password of `changePassword` from a failed sign-in.
#[tracing::instrument(skip_all)]
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    email_key: &str,
    user_id: Option<Uuid>,
    via: Option<&str>,
) -> AppResult<()> {
    let mut new = json!({"account": account_digest(email_key)});
    if let Some(via) = via {
        new["via"] = json!(via);
    }
    record(
        conn,
        caller,
        AuditEntry::new(None, "auth.login_failed", "User", user_id).with_new(new),
    )
    .await
    .map(drop)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Inside the registration's transaction: lock the address bucket, then refuse (`RateLimited`)
/// when it registered `per_hour` accounts in the last hour. Requests without an address (tests,
/// the command line) have no bucket and no limit.
#[tracing::instrument(skip_all)]
pub async fn check_register(
    conn: &mut AsyncPgConnection,
    bucket: Option<IpNet>,
    per_hour: u32,
) -> AppResult<()> {
    let Some(bucket) = bucket else {
        return Ok(());
    };
    advisory_lock(conn, &register_key(bucket)).await?;
    let recent: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_events
          WHERE action = 'user.register'
            AND created_at > now() - interval '1 hour'
            AND ip_address <<= $1",
    )
    .bind::<diesel::sql_types::Inet, _>(bucket)
    .get_result(conn)
    .await?;
    if recent.n >= i64::from(per_hour) {
        return Err(AppError::RateLimited(format!(
            "too many accounts registered from this address: at most {per_hour} an hour"
        )));
    }
    Ok(())
}
