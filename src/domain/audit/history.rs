//! Reading the audit history: pages in SQL (keyset on `id`), because an organization's history
//! grows without bound and cannot be loaded whole like a member list.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use diesel::{
    dsl::{exists, sql},
    pg::Pg,
    prelude::*,
    sql_types::BigInt,
};
use diesel_async::RunQueryDsl;
use ipnet::IpNet;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    db::{
        Db,
        schema::{audit_events, metrics, parameters, scenarios},
    },
    domain::{
        Core,
        loader::{LoadError, PgLoader},
    },
    error::{AppError, AppResult},
};

/// One stored audit event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditEventRow {
    /// The sequence: strictly increasing, the stream's cursor.
    pub id: i64,
    /// The tenant; `None` for platform events.
    pub organization_id: Option<Uuid>,
    /// Acting user.
    pub actor_user_id: Option<Uuid>,
    /// Acting API key.
    pub actor_api_key_id: Option<Uuid>,
    /// `<entity>.<verb>`.
    pub action: String,
    /// e.g. `FinancialModel`.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: Option<Uuid>,
    /// Changed fields before.
    pub old_values: Option<Value>,
    /// Changed fields after.
    pub new_values: Option<Value>,
    /// Client address.
    pub ip_address: Option<IpNet>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The previous event's hash in the organization's chain.
    pub prev_hash: Option<Vec<u8>>,
    /// This event's chained hash.
    pub hash: Vec<u8>,
}

/// Whose history is read.
#[derive(Debug, Clone, Copy)]
pub enum HistoryScope {
    /// Every event of an organization.
    Organization(Uuid),
    /// Events of a model and of anything inside it: the model itself, and its scenarios
    /// (parameter overrides and value upserts are recorded on the scenario), metrics and
    /// parameters, matched by entity id against those tables. Deleted scenarios stay (they are
    /// soft-deleted); a deleted metric's rows are gone, so its events leave the model's history.
    Model {
        /// The model's organization (keeps the scan on the `(organization_id, id)` index).
        organization_id: Uuid,
        /// The model.
        model_id: Uuid,
    },
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorRef {
    /// A user.
    User(Uuid),
    /// An API key.
    ApiKey(Uuid),
}

/// Conditions on events; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Any of these actions.
    pub actions: Option<Vec<String>>,
    /// This entity type.
    pub entity_type: Option<String>,
    /// This entity.
    pub entity_id: Option<Uuid>,
    /// This actor.
    pub actor: Option<ActorRef>,
    /// At or after (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Before (exclusive), so that `until` of one window is `since` of the next.
    pub until: Option<DateTime<Utc>>,
}

/// A page request: keyset cursors are sequences.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    /// Forward page size.
    pub first: Option<usize>,
    /// Only events with a greater sequence.
    pub after: Option<i64>,
    /// Backward page size (the latest N before `before`).
    pub last: Option<usize>,
    /// Only events with a smaller sequence.
    pub before: Option<i64>,
}

/// What a caller reads of a page besides its rows. The rows take one statement; each of these
/// may take more work, so it is done only when asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageExtras {
    /// [`AuditPage::total`]: how many events match, across all pages.
    pub total: bool,
    /// An exact [`AuditPage::has_previous`], also when the only earlier events lie at or before
    /// `after` (which the page itself cannot see).
    pub has_previous: bool,
    /// An exact [`AuditPage::has_next`], also when the only later events lie at or after
    /// `before`.
    pub has_next: bool,
}

/// A page of events in sequence order.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The events, ascending.
    pub rows: Vec<AuditEventRow>,
    /// Events exist before the page. Exact when [`PageExtras::has_previous`] was asked for;
    /// otherwise only what the page shows (events beyond `after` are not looked for).
    pub has_previous: bool,
    /// Events exist after the page. Exact when [`PageExtras::has_next`] was asked for;
    /// otherwise only what the page shows (events beyond `before` are not looked for).
    pub has_next: bool,
    /// Events matching the scope and filter, across all pages; `None` unless
    /// [`PageExtras::total`] was asked for.
    pub total: Option<i64>,
}

type Boxed<'a> = audit_events::BoxedQuery<'a, Pg>;

/// The scope and filter as a query; built again for each statement of a page (the page, its
/// count, its cursor checks) from the same inputs.
fn filtered(scope: HistoryScope, filter: &AuditFilter) -> Boxed<'static> {
    let mut query = audit_events::table.into_boxed();
    match scope {
        HistoryScope::Organization(org) => {
            query = query.filter(audit_events::organization_id.eq(org));
        }
        HistoryScope::Model {
            organization_id,
            model_id,
        } => {
            let scenario_ids = scenarios::table
                .filter(scenarios::model_id.eq(model_id))
                .select(scenarios::id.nullable());
            let metric_ids = metrics::table
                .filter(metrics::model_id.eq(model_id))
                .select(metrics::id.nullable());
            let parameter_ids = parameters::table
                .filter(parameters::model_id.eq(model_id))
                .select(parameters::id.nullable());
            query = query
                .filter(audit_events::organization_id.eq(organization_id))
                .filter(
                    audit_events::entity_id
                        .eq(model_id)
                        .or(audit_events::entity_id.eq_any(scenario_ids))
                        .or(audit_events::entity_id.eq_any(metric_ids))
                        .or(audit_events::entity_id.eq_any(parameter_ids)),
                );
        }
    }
    if let Some(actions) = &filter.actions {
        query = query.filter(audit_events::action.eq_any(actions.clone()));
    }
    if let Some(entity_type) = &filter.entity_type {
        query = query.filter(audit_events::entity_type.eq(entity_type.clone()));
    }
    if let Some(entity_id) = filter.entity_id {
        query = query.filter(audit_events::entity_id.eq(entity_id));
    }
    match filter.actor {
        Some(ActorRef::User(id)) => query = query.filter(audit_events::actor_user_id.eq(id)),
        Some(ActorRef::ApiKey(id)) => query = query.filter(audit_events::actor_api_key_id.eq(id)),
        None => {}
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::created_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::created_at.lt(until));
    }
    query
}

/// One page of events: one statement (keyset on `id`, one extra row to learn whether more
/// follow in the page's direction), and a second only for the `extras` the page cannot answer:
/// the total, and whether events lie beyond the cursors (`at or before after`, `at or after
/// before`).
///
/// Why not fold them into the page statement: a `count(*) OVER ()` window makes PostgreSQL read
/// every matching event before it returns the first `LIMIT n + 1` rows, so every page would cost
/// the whole history (what the keyset avoids), asked for or not. The cursor checks could ride on
/// the page as uncorrelated `EXISTS` columns, but an empty page returns no row to carry them, and
/// they are rare (forward paging reads `hasNextPage` from the extra row): a second statement,
/// only when asked, keeps the common page at one.
#[tracing::instrument(skip_all)]
pub async fn page(
    core: &Core,
    scope: HistoryScope,
    filter: &AuditFilter,
    request: PageRequest,
    extras: PageExtras,
    default_size: usize,
) -> AppResult<AuditPage> {
    let mut query = filtered(scope, filter);
    if let Some(after) = request.after {
        query = query.filter(audit_events::id.gt(after));
    }
    if let Some(before) = request.before {
        query = query.filter(audit_events::id.lt(before));
    }
    let backward = request.last.is_some() && request.first.is_none();
    let size = if backward {
        request.last.unwrap_or(default_size)
    } else {
        request.first.unwrap_or(default_size)
    };
    let limit = i64::try_from(size).unwrap_or(i64::MAX - 1) + 1;
    query = if backward {
        query.order(audit_events::id.desc())
    } else {
        query.order(audit_events::id.asc())
    };
    let mut conn = core.db.conn().await?;
    let mut rows: Vec<AuditEventRow> = query
        .limit(limit)
        .select(AuditEventRow::as_select())
        .load(&mut conn)
        .await?;
    let more = rows.len() > size;
    rows.truncate(size);
    let (mut has_previous, mut has_next) = (false, false);
    if backward {
        rows.reverse();
        has_previous = more;
    } else {
        has_next = more;
        // `first` and `last` together: the last `last` of the first `first` (Relay's rule).
        if let Some(last) = request.last
            && rows.len() > last
        {
            rows.drain(..rows.len() - last);
            has_previous = true;
        }
    }
    // The events beyond a cursor matter only when the page alone has not answered already.
    let after = request
        .after
        .filter(|_| extras.has_previous && !has_previous);
    let before = request.before.filter(|_| extras.has_next && !has_next);
    let mut total = None;
    let (beyond_after, beyond_before) = if extras.total {
        // The count reads every matching event anyway: the cursor checks are FILTERs on it.
        let (count, up_to_after, from_before): (i64, i64, i64) = filtered(scope, filter)
            .select((
                sql::<BigInt>("count(*)"),
                sql::<BigInt>("count(*) FILTER (WHERE audit_events.id <= ")
                    .bind::<BigInt, _>(after.unwrap_or(0))
                    .sql(")"),
                sql::<BigInt>("count(*) FILTER (WHERE audit_events.id >= ")
                    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
                    .sql(")"),
            ))
            .get_result(&mut conn)
            .await?;
        total = Some(count);
        (up_to_after > 0, from_before > 0)
    } else if after.is_some() || before.is_some() {
        // No count asked for: `EXISTS` stops at the first event beyond the cursor (on the
        // `(organization_id, id)` index, the one next to it) instead of counting the history.
        // An absent cursor's probe is ignored below; its bound (sequences start at 1) keeps it
        // to one index probe.
        diesel::select((
            exists(filtered(scope, filter).filter(audit_events::id.le(after.unwrap_or(0)))),
            exists(filtered(scope, filter).filter(audit_events::id.ge(before.unwrap_or(i64::MAX)))),
        ))
        .get_result(&mut conn)
        .await?
    } else {
        (false, false)
    };
    has_previous |= after.is_some() && beyond_after;
    has_next |= before.is_some() && beyond_before;
    Ok(AuditPage {
        rows,
        has_previous,
        has_next,
        total,
    })
}

/// Up to `limit` events of `scope` matching `filter` with a sequence greater than `after`, in
/// order: one keyset statement (`id > $after ORDER BY id LIMIT n` on the `(organization_id, id)`
/// index), no count. What the live stream reads on every notice, so its cost is the page, never
/// the organization's whole history.
#[tracing::instrument(skip_all)]
pub async fn rows_after(
    db: &Db,
    scope: HistoryScope,
    filter: &AuditFilter,
    after: i64,
    limit: usize,
) -> AppResult<Vec<AuditEventRow>> {
    let mut conn = db.conn().await?;
    Ok(filtered(scope, filter)
        .filter(audit_events::id.gt(after))
        .order(audit_events::id.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(AuditEventRow::as_select())
        .load(&mut conn)
        .await?)
}

/// An event by sequence (for `node(id)` and the chain report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditEventById(pub i64);

impl Loader<AuditEventById> for PgLoader {
    type Value = AuditEventRow;
    type Error = LoadError;

    #[tracing::instrument(name = "dataloader.batch", skip_all, fields(loader = "AuditEventById", keys = keys.len()))]
    async fn load(
        &self,
        keys: &[AuditEventById],
    ) -> Result<HashMap<AuditEventById, AuditEventRow>, LoadError> {
        crate::domain::loader::record_batch("AuditEventById", keys.len());
        let mut conn = self.db().conn().await?;
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<AuditEventRow> = audit_events::table
            .filter(audit_events::id.eq_any(ids))
            .select(AuditEventRow::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|r| (AuditEventById(r.id), r))
            .collect())
    }
}
