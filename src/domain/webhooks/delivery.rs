//! Delivery: every active endpoint is served by one worker across all instances, which POSTs
//! its organization's audit events in sequence order, in batches, and moves the endpoint's
//! cursor only when the receiver answers 2xx: at least once, nothing skipped.
//!
//! Leadership is a lease on the endpoint's row. Each instance runs a dispatcher that, every
//! tick, renews the leases it holds (one statement) and claims unleased or expired endpoints
//! with `FOR UPDATE SKIP LOCKED` (one statement), starting a worker task for each one claimed.
//! An instance that stops (or crashes) stops renewing; its leases expire and another instance
//! claims the endpoints, continuing from their cursors. Every write of a worker names its lease
//! (`leased_by`) and the row's `version`, so a worker that lost its lease, or whose endpoint was
//! replayed or changed meanwhile, moves nothing.
//!
//! A worker reads the events after the cursor from the audit table (a notice on the audit
//! channel, or a quiet look every poll interval, says when to look), keeps those its filter
//! wants (the cursor still moves past the others), and sends at most `batch` of them. The batch
//! (its Webhook-Id and last sequence) is stored before the first attempt, so every retry sends
//! the same message. A failure schedules the next attempt with exponential backoff and jitter;
//! once failures have lasted the retry horizon the endpoint is marked failing and paused, until
//! an ADMIN resumes it (delivery continues from the cursor).
//!
//! Workers run as the server itself (`DbCaller::All`): they act for no request.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::Rng;
use serde_json::{Value, json};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    task::JoinHandle,
};
use url::Url;
use uuid::Uuid;

use super::{
    guard::{GuardedResolver, literal_refusal},
    rows::WebhookEndpointRow,
    signing,
};
use crate::{
    db::schema::{audit_events, webhook_deliveries, webhook_endpoints},
    domain::{
        Core,
        audit::{history::AuditEventRow, stream::AuditNotice},
    },
    error::{AppError, AppResult},
};

/// Attempts kept per endpoint (`WebhookEndpoint.deliveries`); older ones are removed.
pub const KEPT_DELIVERIES: i64 = 200;
/// Audit rows one look reads after the cursor when the endpoint has a filter, which may keep
/// few of them (without one, a look reads one batch).
const SCAN: i64 = 1_000;
/// The longest wait between two attempts, whatever the backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(3_600);
/// The `application_name` of every instance's dispatcher connection (outside the pool, like
/// the listener's: `pg_stat_activity` tells them from pooled connections by it).
pub const DISPATCHER_APPLICATION_NAME: &str = "finvision-webhooks";
/// Characters of a failure kept in `lastError` and the delivery log.
const MAX_ERROR_LEN: usize = 500;

/// The delivery settings (`FV_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Deliver to (and accept URLs of) loopback and private addresses, over HTTP too.
    pub allow_private: bool,
    /// Events per POST at most.
    pub batch: usize,
    /// One attempt's whole time (connect, send, answer).
    pub timeout: Duration,
    /// The first retry's delay (doubling with each failure, with jitter).
    pub retry_base: Duration,
    /// How long failures may last before the endpoint is marked failing and paused.
    pub retry_horizon: Duration,
    /// How often an idle worker looks for events without a notice, and the dispatcher claims.
    pub poll: Duration,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// Bytes of a receiver's answer read at most.
    pub max_response_bytes: usize,
}

/// How an audit event looks in a payload: the GraphQL face's shape (global IDs), given to the
/// workers by the application, since the core knows nothing of it.
pub trait PayloadShape: Send + Sync + 'static {
    /// The organization's ID as clients know it.
    fn organization_id(&self, id: Uuid) -> String;
    /// One event: the subscription's shape, with `organizationId` and `sequence`.
    fn event(&self, row: &AuditEventRow) -> Value;
}

/// What every worker of an instance shares.
struct Shared {
    core: Core,
    settings: WebhookSettings,
    client: reqwest::Client,
    shape: Arc<dyn PayloadShape>,
    /// This instance's name in `leased_by`.
    instance: Uuid,
}

/// Start this instance's dispatcher over `session_url` (its own connection, see [`dispatch`]);
/// abort the handle to stop it and its workers.
pub fn start(
    core: &Core,
    shape: Arc<dyn PayloadShape>,
    session_url: String,
) -> anyhow::Result<tokio::task::AbortHandle> {
    let settings = core.settings.webhooks.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .user_agent("FinVision-Webhooks/1")
        .build()?;
    let shared = Arc::new(Shared {
        core: core.for_server(),
        settings,
        client,
        shape,
        instance: Uuid::new_v4(),
    });
    Ok(tokio::spawn(dispatch(shared, session_url)).abort_handle())
}

/// The workers of this instance, aborted with the dispatcher that owns them.
#[derive(Default)]
struct Workers(HashMap<Uuid, JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in self.0.values() {
            worker.abort();
        }
    }
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The dispatcher: renew, claim, start workers; forever. It ticks on a connection of its own,
/// outside the pool (like the audit listener's), made the server's (`fv_set_caller('all', …)`) once:
/// its statements run every tick whether or not any endpoint exists, and are no request's.
async fn dispatch(shared: Arc<Shared>, session_url: String) {
    let mut workers = Workers::default();
    let mut conn: Option<AsyncPgConnection> = None;
    let tick = shared.settings.poll.min(shared.settings.lease / 3);
    loop {
        workers.0.retain(|_, worker| !worker.is_finished());
        match renew_and_claim(&shared, &session_url, &mut conn, &workers).await {
            Ok((kept, claimed)) => {
                // A lease not renewed was lost (expired and taken): its worker must stop.
                workers.0.retain(|id, worker| {
                    let keep = kept.contains(id);
                    if !keep {
                        worker.abort();
                    }
                    keep
                });
                for id in claimed {
                    let shared = shared.clone();
                    workers.0.insert(id, tokio::spawn(work(shared, id)));
                }
            }
            Err(error) => {
                // Connected anew at the next tick.
                conn = None;
                tracing::warn!(%error, "webhook dispatch failed; retrying");
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// Renew the leases of `workers`, then claim what is free: returns (renewed, claimed).
async fn renew_and_claim(
    shared: &Shared,
    session_url: &str,
    conn: &mut Option<AsyncPgConnection>,
    workers: &Workers,
) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    if conn.is_none() {
        let mut fresh = AsyncPgConnection::establish(session_url).await?;
        diesel::sql_query(
            "SELECT fv_set_caller('all', false), \
                    set_config('statement_timeout', '10s', false), \
                    set_config('application_name', $1, false)",
        )
        .bind::<diesel::sql_types::Text, _>(DISPATCHER_APPLICATION_NAME)
        .execute(&mut fresh)
        .await?;
        *conn = Some(fresh);
    }
    let Some(conn) = conn.as_mut() else {
        anyhow::bail!("no dispatch connection");
    };
    let lease_ms = i64::try_from(shared.settings.lease.as_millis()).unwrap_or(i64::MAX);
    let held: Vec<Uuid> = workers.0.keys().copied().collect();
    let kept = if held.is_empty() {
        Vec::new()
    } else {
        diesel::sql_query(
            "UPDATE webhook_endpoints SET leased_until = now() + make_interval(secs => $1 / 1000.0) \
             WHERE id = ANY($2) AND leased_by = $3 RETURNING id",
        )
        .bind::<BigInt, _>(lease_ms)
        .bind::<Array<SqlUuid>, _>(&held)
        .bind::<SqlUuid, _>(shared.instance)
        .load::<Claimed>(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect()
    };
    let claimed = diesel::sql_query(
        "UPDATE webhook_endpoints SET leased_by = $1, \
                leased_until = now() + make_interval(secs => $2 / 1000.0) \
         WHERE id IN (SELECT id FROM webhook_endpoints \
                      WHERE active AND failing_since IS NULL \
                        AND (leased_until IS NULL OR leased_until < now()) \
                      ORDER BY next_attempt_at LIMIT 100 \
                      FOR UPDATE SKIP LOCKED) \
         RETURNING id",
    )
    .bind::<SqlUuid, _>(shared.instance)
    .bind::<BigInt, _>(lease_ms)
    .load::<Claimed>(conn)
    .await?
    .into_iter()
    .map(|c| c.id)
    .collect();
    Ok((kept, claimed))
}

/// An endpoint row, its secret, and the previous one with the end of its grace.
type Loaded = (
    WebhookEndpointRow,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// An endpoint with what signing needs.
struct Endpoint {
    row: WebhookEndpointRow,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// What one turn of a worker found.
enum Turn {
    /// The endpoint is gone, inactive, failing, or no longer this instance's.
    Stop,
    /// Nothing to send before this instant (a scheduled retry) or before a notice.
    Wait(Option<DateTime<Utc>>),
    /// Something was done: look again at once.
    Again,
}

/// One endpoint's worker: turns until the endpoint is no longer this instance's to serve.
async fn work(shared: Arc<Shared>, id: Uuid) {
    // Listen before reading anything, so nothing committed in between waits for the poll.
    let mut notices = shared.core.audit_stream.subscribe();
    let mut organization = None;
    loop {
        let turn = match turn(&shared, id, &mut organization).await {
            Ok(turn) => turn,
            Err(error) => {
                tracing::warn!(endpoint = %id, %error, "webhook delivery turn failed; retrying");
                Turn::Wait(Some(Utc::now() + shared.settings.poll))
            }
        };
        match turn {
            Turn::Stop => break,
            Turn::Again => {}
            Turn::Wait(until) => {
                let wait = until.map_or(shared.settings.poll, |at| {
                    (at - Utc::now()).to_std().unwrap_or_default()
                });
                wait_for(&mut notices, organization, wait.min(shared.settings.poll)).await;
            }
        }
    }
    release(&shared, id).await;
}

/// Wait until a notice for `organization` arrives, or `timeout` passes.
async fn wait_for(
    notices: &mut broadcast::Receiver<AuditNotice>,
    organization: Option<Uuid>,
    timeout: Duration,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            notice = notices.recv() => match notice {
                Ok(AuditNotice::Event { organization_id, .. }) if organization_id.is_some() && organization_id == organization => return,
                Ok(AuditNotice::Event { .. }) => {}
                Ok(AuditNotice::Resync) | Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => {
                    deadline.await;
                    return;
                }
            },
            () = &mut deadline => return,
        }
    }
}

/// Give the lease back (the endpoint stopped being served here).
async fn release(shared: &Shared, id: Uuid) {
    let released = async {
        let mut conn = shared.core.db.conn().await?;
        diesel::update(
            webhook_endpoints::table
                .find(id)
                .filter(webhook_endpoints::leased_by.eq(shared.instance)),
        )
        .set((
            webhook_endpoints::leased_by.eq(None::<Uuid>),
            webhook_endpoints::leased_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(&mut conn)
        .await?;
        Ok::<_, AppError>(())
    };
    if let Err(error) = released.await {
        tracing::warn!(endpoint = %id, %error, "could not release a webhook lease; it expires");
    }
}

/// The endpoint, if it is still this instance's to serve.
async fn load(shared: &Shared, id: Uuid) -> AppResult<Option<Endpoint>> {
    let mut conn = shared.core.db.conn().await?;
    let found: Option<Loaded> = webhook_endpoints::table
        .find(id)
        .filter(webhook_endpoints::leased_by.eq(shared.instance))
        .select((
            WebhookEndpointRow::as_select(),
            webhook_endpoints::secret,
            webhook_endpoints::previous_secret,
            webhook_endpoints::previous_secret_expires_at,
        ))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(found.map(
        |(row, secret, previous_secret, previous_secret_expires_at)| Endpoint {
            row,
            secret,
            previous_secret,
            previous_secret_expires_at,
        },
    ))
}

/// Events of `organization` after `cursor` (up to `upto` when given), in order, at most
/// `limit`.
async fn events_after(
    shared: &Shared,
    organization: Uuid,
    cursor: i64,
    upto: Option<i64>,
    limit: i64,
) -> AppResult<Vec<AuditEventRow>> {
    let mut conn = shared.core.db.conn().await?;
    let mut query = audit_events::table
        .filter(audit_events::organization_id.eq(organization))
        .filter(audit_events::id.gt(cursor))
        .into_boxed();
    if let Some(upto) = upto {
        query = query.filter(audit_events::id.le(upto));
    }
    Ok(query
        .order(audit_events::id.asc())
        .limit(limit)
        .select(AuditEventRow::as_select())
        .load(&mut conn)
        .await?)
}

/// The endpoint row of this lease at this version: what a worker's write is conditioned on.
macro_rules! mine {
    ($shared:expr, $row:expr) => {
        webhook_endpoints::table
            .find($row.id)
            .filter(webhook_endpoints::leased_by.eq($shared.instance))
            .filter(webhook_endpoints::version.eq($row.version))
    };
}

/// One step of a worker: form or resume a batch, send it, settle the outcome.
async fn turn(shared: &Shared, id: Uuid, organization: &mut Option<Uuid>) -> AppResult<Turn> {
    let Some(endpoint) = load(shared, id).await? else {
        return Ok(Turn::Stop);
    };
    let row = &endpoint.row;
    *organization = Some(row.organization_id);
    if !row.active || row.failing_since.is_some() {
        return Ok(Turn::Stop);
    }
    if row.next_attempt_at > Utc::now() {
        return Ok(Turn::Wait(Some(row.next_attempt_at)));
    }
    let filtered = row.actions.is_some() || row.entity_type.is_some();
    let limit = if filtered {
        SCAN
    } else {
        i64::try_from(shared.settings.batch).unwrap_or(SCAN)
    };
    let scanned = events_after(
        shared,
        row.organization_id,
        row.cursor,
        row.batch_last,
        limit,
    )
    .await?;
    let Some(last_scanned) = scanned.last().map(|e| e.id) else {
        if row.batch_last.is_some() {
            // The batch's events are gone (archived by retention): nothing left to send of it.
            settle_success(shared, row, row.batch_last.unwrap_or(row.cursor)).await?;
            return Ok(Turn::Again);
        }
        return Ok(Turn::Wait(None));
    };
    let mut events: Vec<&AuditEventRow> = scanned
        .iter()
        .filter(|e| row.wants(&e.action, &e.entity_type))
        .collect();
    let batch_last = match row.batch_last {
        Some(last) => last,
        None if events.len() > shared.settings.batch => {
            events.truncate(shared.settings.batch);
            events.last().map_or(last_scanned, |e| e.id)
        }
        None => last_scanned,
    };
    events.truncate(shared.settings.batch);
    if events.is_empty() {
        // Nothing the filter wants: the cursor moves past what was read.
        settle_success(shared, row, batch_last).await?;
        return Ok(Turn::Again);
    }
    let webhook_id = match &row.batch_id {
        Some(id) => id.clone(),
        None => {
            let id = format!("msg_{}", Uuid::new_v4().simple());
            let mut conn = shared.core.db.conn().await?;
            let stored = diesel::update(mine!(shared, row))
                .set((
                    webhook_endpoints::batch_id.eq(&id),
                    webhook_endpoints::batch_last.eq(batch_last),
                ))
                .execute(&mut conn)
                .await?;
            if stored == 0 {
                return Ok(Turn::Again);
            }
            id
        }
    };
    let body = serde_json::to_vec(&json!({
        "type": "audit.events",
        "organizationId": shared.shape.organization_id(row.organization_id),
        "events": events.iter().map(|e| shared.shape.event(e)).collect::<Vec<_>>(),
    }))
    .map_err(AppError::internal)?;
    let first = <[&AuditEventRow]>::first(&events).map_or(batch_last, |e| e.id);
    let count = i32::try_from(events.len()).unwrap_or(i32::MAX);
    let attempted_at = Utc::now();
    let started = std::time::Instant::now();
    let outcome = send(shared, &endpoint, &webhook_id, body).await;
    let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    metrics::histogram!("fv_webhook_delivery_seconds").record(started.elapsed().as_secs_f64());
    let (status_code, error) = match &outcome {
        Ok(status) if (200..300).contains(status) => (Some(i32::from(*status)), None),
        Ok(status) => (Some(i32::from(*status)), Some(format!("HTTP {status}"))),
        Err(error) => (None, Some(error.clone())),
    };
    log_delivery(
        shared,
        row,
        &webhook_id,
        attempted_at,
        (first, batch_last, count),
        status_code,
        duration_ms,
        error.as_deref(),
    )
    .await?;
    match error {
        None => {
            metrics::counter!("fv_webhook_events_delivered_total").increment(events.len() as u64);
            settle_success(shared, row, batch_last).await?;
            Ok(Turn::Again)
        }
        Some(error) => {
            metrics::counter!("fv_webhook_delivery_failures_total").increment(1);
            settle_failure(shared, row, &error).await?;
            Ok(Turn::Again)
        }
    }
}

/// POST one batch; the status, or why there was none.
async fn send(
    shared: &Shared,
    endpoint: &Endpoint,
    webhook_id: &str,
    body: Vec<u8>,
) -> Result<u16, String> {
    let url = Url::parse(&endpoint.row.url).map_err(|_| "the URL is not valid".to_owned())?;
    if let Some(refusal) = literal_refusal(&url, shared.settings.allow_private) {
        return Err(refusal);
    }
    let timestamp = Utc::now().timestamp();
    let mut signatures = vec![
        signing::sign(&endpoint.secret, webhook_id, timestamp, &body)
            .ok_or_else(|| "the signing secret is not valid".to_owned())?,
    ];
    if let (Some(previous), Some(until)) = (
        &endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
    ) && until > Utc::now()
        && let Some(signature) = signing::sign(previous, webhook_id, timestamp, &body)
    {
        signatures.push(signature);
    }
    let response = shared
        .client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e, shared.settings.timeout))?;
    let status = response.status().as_u16();
    // Read at most the cap (an answer is not needed beyond its status): a receiver cannot make
    // the worker buffer an endless body. Dropping the response closes the connection.
    let mut response = response;
    let mut read = 0usize;
    while read <= shared.settings.max_response_bytes {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(status)
}

/// A transport failure in a sentence (its causes included, for the resolver's refusal).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    truncate(text)
}

fn truncate(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_ERROR_LEN) {
        text.truncate(at);
    }
    text
}

/// Write one attempt to the delivery log, and drop the oldest beyond [`KEPT_DELIVERIES`].
#[allow(clippy::too_many_arguments)]
async fn log_delivery(
    shared: &Shared,
    row: &WebhookEndpointRow,
    webhook_id: &str,
    attempted_at: DateTime<Utc>,
    (first, last, count): (i64, i64, i32),
    status_code: Option<i32>,
    duration_ms: i32,
    error: Option<&str>,
) -> AppResult<()> {
    let mut conn = shared.core.db.conn().await?;
    let inserted: i64 = diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::endpoint_id.eq(row.id),
            webhook_deliveries::organization_id.eq(row.organization_id),
            webhook_deliveries::webhook_id.eq(webhook_id),
            webhook_deliveries::attempted_at.eq(attempted_at),
            webhook_deliveries::first_sequence.eq(first),
            webhook_deliveries::last_sequence.eq(last),
            webhook_deliveries::event_count.eq(count),
            webhook_deliveries::status_code.eq(status_code),
            webhook_deliveries::duration_ms.eq(duration_ms),
            webhook_deliveries::error.eq(error),
        ))
        .returning(webhook_deliveries::id)
        .get_result(&mut conn)
        .await?;
    if inserted % 50 == 0 {
        diesel::sql_query(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND id <= \
             (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 \
              ORDER BY id DESC OFFSET $2 LIMIT 1)",
        )
        .bind::<SqlUuid, _>(row.id)
        .bind::<BigInt, _>(KEPT_DELIVERIES)
        .execute(&mut conn)
        .await?;
    }
    Ok(())
}

/// The receiver acknowledged everything up to `last` (or the filter skipped it).
async fn settle_success(shared: &Shared, row: &WebhookEndpointRow, last: i64) -> AppResult<()> {
    let mut conn = shared.core.db.conn().await?;
    diesel::update(mine!(shared, row))
        .set((
            webhook_endpoints::cursor.eq(last),
            webhook_endpoints::batch_id.eq(None::<String>),
            webhook_endpoints::batch_last.eq(None::<i64>),
            webhook_endpoints::attempts.eq(0),
            webhook_endpoints::retrying_since.eq(None::<DateTime<Utc>>),
            webhook_endpoints::last_error.eq(None::<String>),
            webhook_endpoints::next_attempt_at.eq(diesel::dsl::now),
        ))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The delay before retry `attempt` (1 for the first): the base doubled per failure, at most
/// [`MAX_BACKOFF`], then a random point in its upper half (jitter spreads the retries of many
/// endpoints failing together).
fn backoff(base: Duration, attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let full = base.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// An attempt failed: schedule the next, or pause the endpoint past the retry horizon.
async fn settle_failure(shared: &Shared, row: &WebhookEndpointRow, error: &str) -> AppResult<()> {
    let now = Utc::now();
    let attempts = row.attempts.saturating_add(1);
    let since = row.retrying_since.unwrap_or(now);
    let horizon =
        chrono::Duration::from_std(shared.settings.retry_horizon).unwrap_or(chrono::Duration::MAX);
    let delay = chrono::Duration::from_std(backoff(shared.settings.retry_base, attempts))
        .unwrap_or(chrono::Duration::zero());
    let failing = now - since >= horizon;
    let mut conn = shared.core.db.conn().await?;
    diesel::update(mine!(shared, row))
        .set((
            webhook_endpoints::attempts.eq(attempts),
            webhook_endpoints::retrying_since.eq(Some(since)),
            webhook_endpoints::next_attempt_at.eq(now + delay),
            webhook_endpoints::last_error.eq(Some(error)),
            webhook_endpoints::failing_since.eq(failing.then_some(now)),
        ))
        .execute(&mut conn)
        .await?;
    if failing {
        tracing::warn!(endpoint = %row.id, attempts, "webhook endpoint paused as failing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        for attempt in 1..=5 {
            let full = base * (1 << (attempt - 1));
            let d = backoff(base, attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(base, 1_000) <= MAX_BACKOFF);
    }
}
