//! Financial models: rows, rules and operations (each one transaction with its audit event).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    enums::{ModelStatus, PeriodGranularity},
    periods::{check_timeline, periods},
};
use crate::{
    db::schema::{financial_models, metric_values, scenarios},
    domain::names::validate_name,
    domain::{
        Core,
        audit::{Audited, Trail, Versioned},
        auth::Caller,
        organizations::{OrgRole, service::require_role},
    },
    error::{AppError, AppResult},
};

/// A live (not deleted) financial model.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = financial_models, check_for_backend(diesel::pg::Pg))]
pub struct ModelRow {
    /// Primary key.
    pub id: Uuid,
    /// The owning organization.
    pub organization_id: Uuid,
    /// Unique (case-insensitively) in the organization.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Period length.
    pub period_granularity: PeriodGranularity,
    /// First period (inclusive).
    pub start_period: NaiveDate,
    /// Last period (inclusive).
    pub end_period: NaiveDate,
    /// Lifecycle.
    pub status: ModelStatus,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Optimistic-concurrency version.
    pub version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl ModelRow {
    /// Every period of the timeline.
    pub fn periods(&self) -> Vec<NaiveDate> {
        periods(self.start_period, self.end_period, self.period_granularity)
    }
}

impl Audited for ModelRow {
    const ENTITY: &'static str = "FinancialModel";
    const NOUN: &'static str = "model";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "currency": self.currency,
            "periodGranularity": self.period_granularity.as_str(),
            "startPeriod": self.start_period,
            "endPeriod": self.end_period,
            "status": self.status.as_str(),
        })
    }
}

impl Versioned for ModelRow {
    fn version(&self) -> i32 {
        self.version
    }
}

/// Check an ISO 4217 code: three capital letters naming a currency.
pub fn validate_currency(raw: &str, field: &str) -> AppResult<String> {
    let code = raw.trim();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::bad_input(
            field,
            "a currency is an ISO 4217 code: three capital letters, e.g. USD",
        ));
    }
    if iso_currency::Currency::from_code(code).is_none() {
        return Err(AppError::bad_input(
            field,
            format!("{code} is not an ISO 4217 currency code"),
        ));
    }
    Ok(code.to_owned())
}

/// A new model.
#[derive(Debug, Clone)]
pub struct NewModel {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Period length.
    pub period_granularity: PeriodGranularity,
    /// First period.
    pub start_period: NaiveDate,
    /// Last period.
    pub end_period: NaiveDate,
}

#[derive(Insertable)]
#[diesel(table_name = financial_models)]
struct InsertModel<'a> {
    organization_id: Uuid,
    name: &'a str,
    description: Option<&'a str>,
    currency: &'a str,
    period_granularity: PeriodGranularity,
    start_period: NaiveDate,
    end_period: NaiveDate,
    created_by: Option<Uuid>,
}

/// Create a model in an organization (ANALYST+).
#[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
pub async fn create(
    core: &Core,
    caller: &Caller,
    organization_id: Uuid,
    input: NewModel,
) -> AppResult<ModelRow> {
    let name = validate_name(&input.name, "input.name")?;
    crate::domain::limits::description(input.description.as_deref(), "input.description")?;
    let currency = validate_currency(&input.currency, "input.currency")?;
    check_timeline(
        input.start_period,
        input.end_period,
        input.period_granularity,
        "input.startPeriod",
        "input.endPeriod",
    )?;
    core.transaction(async |conn| {
        require_role(conn, caller, organization_id, OrgRole::Analyst).await?;
        let model: ModelRow = diesel::insert_into(financial_models::table)
            .values(InsertModel {
                organization_id,
                name: &name,
                description: input.description.as_deref(),
                currency: &currency,
                period_granularity: input.period_granularity,
                start_period: input.start_period,
                end_period: input.end_period,
                created_by: caller.viewer.user_id(),
            })
            .returning(ModelRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, organization_id)
            .created(conn, "model.create", &model)
            .await?;
        Ok(model)
    })
    .await
}

/// Lock a live model for the rest of the transaction and check the caller's role in its
/// organization (non-members: `NotFound`).
pub(crate) async fn lock_model(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
    min: OrgRole,
) -> AppResult<ModelRow> {
    let model: ModelRow = financial_models::table
        .find(id)
        .filter(financial_models::deleted_at.is_null())
        .select(ModelRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("model"))?;
    require_role(conn, caller, model.organization_id, min)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("model"),
            other => other,
        })?;
    Ok(model)
}

/// Changes to a model; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ModelChanges {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New currency.
    pub currency: Option<String>,
    /// New status.
    pub status: Option<ModelStatus>,
    /// New first period.
    pub start_period: Option<NaiveDate>,
    /// New last period.
    pub end_period: Option<NaiveDate>,
}

/// Update a model at the version the client read (ANALYST+). `action` is the audit action
/// (`model.update`, or `model.archive` for `archiveModel`).
#[tracing::instrument(skip_all, fields(model = %id))]
pub async fn update(
    core: &Core,
    caller: &Caller,
    id: Uuid,
    version: i32,
    changes: ModelChanges,
    action: &'static str,
) -> AppResult<ModelRow> {
    let name = changes
        .name
        .as_deref()
        .map(|n| validate_name(n, "input.name"))
        .transpose()?;
    crate::domain::limits::description(changes.description.as_deref(), "input.description")?;
    let currency = changes
        .currency
        .as_deref()
        .map(|c| validate_currency(c, "input.currency"))
        .transpose()?;
    core.transaction(async |conn| {
        let current = lock_model(conn, caller, id, OrgRole::Analyst).await?;
        current.check_version(version)?;
        let start = changes.start_period.unwrap_or(current.start_period);
        let end = changes.end_period.unwrap_or(current.end_period);
        if (start, end) != (current.start_period, current.end_period) {
            check_timeline(
                start,
                end,
                current.period_granularity,
                "input.startPeriod",
                "input.endPeriod",
            )?;
            // Stored values must lie on the timeline: shrinking past them would orphan data.
            let outside: i64 = metric_values::table
                .inner_join(scenarios::table)
                .filter(scenarios::model_id.eq(id))
                .filter(
                    metric_values::period
                        .lt(start)
                        .or(metric_values::period.gt(end)),
                )
                .count()
                .get_result(conn)
                .await?;
            if outside > 0 {
                return Err(AppError::Conflict(format!(
                    "{outside} stored values lie outside the new timeline: remove them first"
                )));
            }
        }
        let updated: ModelRow = diesel::update(financial_models::table.find(id))
            .set((
                financial_models::name.eq(name.as_deref().unwrap_or(&current.name)),
                financial_models::description.eq(changes
                    .description
                    .as_deref()
                    .or(current.description.as_deref())),
                financial_models::currency.eq(currency.as_deref().unwrap_or(&current.currency)),
                financial_models::status.eq(changes.status.unwrap_or(current.status)),
                financial_models::start_period.eq(start),
                financial_models::end_period.eq(end),
                financial_models::version.eq(financial_models::version + 1),
            ))
            .returning(ModelRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, current.organization_id)
            .updated(conn, action, &current, &updated)
            .await?;
        Ok(updated)
    })
    .await
}

/// Soft-delete a model (ADMIN+).
#[tracing::instrument(skip_all, fields(model = %id))]
pub async fn delete(core: &Core, caller: &Caller, id: Uuid) -> AppResult<bool> {
    core.transaction(async |conn| {
        let current = lock_model(conn, caller, id, OrgRole::Admin).await?;
        diesel::update(financial_models::table.find(id))
            .set(financial_models::deleted_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        Trail::of(caller, current.organization_id)
            .deleted(conn, "model.delete", &current)
            .await?;
        Ok(true)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::validate_currency;

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(validate_currency("EUR", "c").unwrap(), "EUR");
        for bad in ["eur", "EU", "EURO", "XYZ", ""] {
            assert!(validate_currency(bad, "c").is_err(), "{bad}");
        }
    }
}
