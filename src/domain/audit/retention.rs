//! How long an organization keeps its audit events in the table: a number of months (at least
//! 12) or forever. Older whole months are archived by [`super::archive`]; this module stores the
//! setting and says what was archived.

use chrono::{DateTime, Months, NaiveDate, Utc};
use diesel::{
    dsl::sql,
    prelude::*,
    sql_types::{BigInt, Nullable},
};
use diesel_async::RunQueryDsl;
use serde_json::json;
use uuid::Uuid;

use crate::{
    db::schema::{audit_archives, organizations},
    domain::{
        Core,
        audit::Trail,
        auth::Caller,
        organizations::{
            OrgRole, OrganizationRow,
            service::{lock_organization, require_role},
        },
    },
    error::{AppError, AppResult},
};

/// The shortest retention an organization may choose: a year of history stays queryable.
pub const MIN_RETENTION_MONTHS: i32 = 12;

/// An organization's retention and what its archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionStatus {
    /// The organization.
    pub organization_id: Uuid,
    /// Months kept in the table; `None`: kept forever.
    pub months: Option<i32>,
    /// Events created before this instant were archived and left the table.
    pub archived_through: Option<DateTime<Utc>>,
    /// Events archived so far.
    pub archived_events: i64,
}

/// The first instant after `month` (its first day) in UTC.
pub fn month_end(month: NaiveDate) -> DateTime<Utc> {
    let next = month.checked_add_months(Months::new(1)).unwrap_or(month);
    next.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Set the retention of `organization_id` (OWNER). `None` keeps everything; fewer than
/// [`MIN_RETENTION_MONTHS`] is refused. The change and its audit event commit together.
#[tracing::instrument(skip_all, fields(organization = %organization_id))]
pub async fn set_retention(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    months: Option<i32>,
) -> AppResult<RetentionStatus> {
    if months.is_some_and(|m| m < MIN_RETENTION_MONTHS) {
        return Err(AppError::bad_input(
            "months",
            format!("audit events are kept at least {MIN_RETENTION_MONTHS} months"),
        ));
    }
    core.transaction(async |conn| {
        let current = lock_organization(conn, organization_id).await?;
        require_role(conn, caller, organization_id, OrgRole::Owner).await?;
        let updated: OrganizationRow = diesel::update(organizations::table.find(organization_id))
            .set(organizations::audit_retention_months.eq(months))
            .returning(OrganizationRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, organization_id)
            .acted(
                conn,
                "organization.audit_retention",
                &updated,
                Some(json!({ "auditRetentionMonths": current.audit_retention_months })),
                json!({ "auditRetentionMonths": months }),
            )
            .await?;
        Ok(())
    })
    .await?;
    status(core, organization_id, months).await
}

/// What has been archived for `organization_id`, whose setting is `months`.
#[tracing::instrument(skip_all, fields(organization = %organization_id))]
pub async fn status(
    core: &Core,
    organization_id: Uuid,
    months: Option<i32>,
) -> AppResult<RetentionStatus> {
    let mut conn = core.db.conn().await?;
    let (last_month, events): (Option<NaiveDate>, Option<i64>) = audit_archives::table
        .filter(audit_archives::organization_id.eq(organization_id))
        .select((
            diesel::dsl::max(audit_archives::month),
            sql::<Nullable<BigInt>>("sum(event_count)::bigint"),
        ))
        .get_result(&mut conn)
        .await?;
    let archived_events = events.unwrap_or(0);
    Ok(RetentionStatus {
        organization_id,
        months,
        archived_through: last_month.map(month_end),
        archived_events,
    })
}
