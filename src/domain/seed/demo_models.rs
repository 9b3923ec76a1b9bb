//! The demo models: what an analyst explores in the first minute.

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    domain::{
        Core,
        auth::Caller,
        modelling::{
            MetricKind, MetricUnit, PeriodGranularity, ScenarioKind,
            metrics::{self, NewMetric},
            models::{self, NewModel},
            parameters::{self, NewParameter},
            scenarios::{self, NewScenario},
            values::{self, ValueInput},
        },
    },
    error::{AppError, AppResult},
};

fn date(y: i32, m: u32) -> AppResult<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, 1)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad demo date")))
}

fn dec(s: &str) -> AppResult<Decimal> {
    s.parse()
        .map_err(|e| AppError::internal(anyhow::anyhow!("bad demo number {s}: {e}")))
}

async fn parameter(
    core: &Core,
    owner: &Caller,
    model: Uuid,
    key: &str,
    name: &str,
    unit: MetricUnit,
    default: &str,
) -> AppResult<()> {
    let new = NewParameter {
        key: key.into(),
        name: name.into(),
        unit,
        default_value: dec(default)?,
    };
    parameters::define(core, owner, model, new)
        .await
        .map(|_| ())
}

async fn metric(
    core: &Core,
    owner: &Caller,
    model: Uuid,
    key: &str,
    name: &str,
    unit: MetricUnit,
    formula: Option<&str>,
) -> AppResult<()> {
    let new = NewMetric {
        key: key.into(),
        name: name.into(),
        unit,
        kind: if formula.is_some() {
            MetricKind::Derived
        } else {
            MetricKind::Input
        },
        formula: formula.map(Into::into),
        description: None,
        display_order: None,
    };
    metrics::define(core, owner, model, new).await.map(|_| ())
}

async fn scenario(
    core: &Core,
    owner: &Caller,
    model: Uuid,
    name: &str,
    kind: ScenarioKind,
    base: Option<Uuid>,
    description: &str,
) -> AppResult<Uuid> {
    let new = NewScenario {
        name: name.into(),
        kind,
        description: Some(description.into()),
        base_scenario_id: base,
    };
    Ok(scenarios::create(core, owner, model, new).await?.id)
}

fn series(
    key: &str,
    start: NaiveDate,
    step_months: u32,
    values: &[&str],
) -> AppResult<Vec<ValueInput>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let months = Months::new(step_months * u32::try_from(i).unwrap_or(0));
            let period = start
                .checked_add_months(months)
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("demo date overflow")))?;
            Ok(ValueInput {
                metric_key: key.into(),
                period,
                value: Some(dec(v)?),
            })
        })
        .collect()
}

/// Seed both demo models into `organization_id`, acting as its owner.
#[tracing::instrument(skip_all, fields(organization_id = %organization_id))]
pub async fn seed(core: &Core, owner: &Caller, organization_id: Uuid) -> AppResult<()> {
    saas(core, owner, organization_id).await?;
    retail(core, owner, organization_id).await
}

/// A monthly SaaS P&L, Jan 2026 – Dec 2028: revenue grows from actuals by a growth rate,
/// costs follow ratios and their own growth, margins and trailing sums are derived.
async fn saas(core: &Core, owner: &Caller, organization_id: Uuid) -> AppResult<()> {
    let start = date(2026, 1)?;
    let model = models::create(
        core,
        owner,
        organization_id,
        NewModel {
            name: "SaaS P&L 2026–2028".into(),
            description: Some(
                "Monthly subscription P&L: three months of actuals, then growth assumptions."
                    .into(),
            ),
            currency: "USD".into(),
            period_granularity: PeriodGranularity::Month,
            start_period: start,
            end_period: date(2028, 12)?,
        },
    )
    .await?
    .id;
    use MetricUnit::{Currency, Number, Percent, Ratio};
    parameter(
        core,
        owner,
        model,
        "growth_rate",
        "Monthly revenue growth",
        Percent,
        "0.035",
    )
    .await?;
    parameter(
        core,
        owner,
        model,
        "cogs_ratio",
        "COGS as a share of revenue",
        Ratio,
        "0.22",
    )
    .await?;
    parameter(
        core,
        owner,
        model,
        "opex_growth",
        "Monthly opex growth",
        Percent,
        "0.015",
    )
    .await?;
    for (key, name, unit, formula) in [
        (
            "revenue",
            "Revenue",
            Currency,
            Some("revenue[-1] * (1 + growth_rate)"),
        ),
        (
            "cogs",
            "Cost of goods sold",
            Currency,
            Some("revenue * cogs_ratio"),
        ),
        (
            "gross_profit",
            "Gross profit",
            Currency,
            Some("revenue - cogs"),
        ),
        (
            "gross_margin",
            "Gross margin",
            Percent,
            Some("gross_profit / revenue"),
        ),
        (
            "opex",
            "Operating expenses",
            Currency,
            Some("opex[-1] * (1 + opex_growth)"),
        ),
        ("ebitda", "EBITDA", Currency, Some("gross_profit - opex")),
        (
            "ebitda_margin",
            "EBITDA margin",
            Percent,
            Some("ebitda / revenue"),
        ),
        (
            "revenue_growth",
            "Revenue growth (month over month)",
            Percent,
            Some("revenue / revenue[-1] - 1"),
        ),
        (
            "revenue_ttm",
            "Revenue, trailing twelve months",
            Currency,
            Some("sum(revenue, 12)"),
        ),
        ("headcount", "Headcount", Number, None),
        (
            "revenue_per_head",
            "Revenue per head",
            Currency,
            Some("revenue / headcount"),
        ),
        (
            "profitable",
            "Profitable month (1 = yes)",
            Number,
            Some("if(ebitda > 0, 1, 0)"),
        ),
    ] {
        metric(core, owner, model, key, name, unit, formula).await?;
    }
    let base = scenario(
        core,
        owner,
        model,
        "Base",
        ScenarioKind::Base,
        None,
        "The plan of record.",
    )
    .await?;
    let upside = scenario(
        core,
        owner,
        model,
        "Upside",
        ScenarioKind::Upside,
        Some(base),
        "Faster growth after the Q2 launch.",
    )
    .await?;
    let downside = scenario(
        core,
        owner,
        model,
        "Downside",
        ScenarioKind::Downside,
        Some(base),
        "Slower growth, costlier hosting.",
    )
    .await?;
    let freeze = scenario(
        core,
        owner,
        model,
        "Downside + hiring freeze",
        ScenarioKind::Custom,
        Some(downside),
        "The downside case with flat opex.",
    )
    .await?;

    // Actuals (and seeds of the recursive formulas) live on Base; every scenario inherits them.
    let mut actuals = series("revenue", start, 1, &["250000", "262000", "271500"])?;
    actuals.extend(series("opex", start, 1, &["180000", "183500", "186000"])?);
    actuals.extend(series(
        "headcount",
        start,
        3,
        &[
            "42", "45", "49", "52", "55", "58", "62", "66", "70", "74", "78", "82",
        ],
    )?);
    values::upsert(core, owner, base, actuals).await?;
    for (scenario_id, key, value) in [
        (upside, "growth_rate", "0.055"),
        (downside, "growth_rate", "0.015"),
        (downside, "cogs_ratio", "0.26"),
        (freeze, "opex_growth", "0"),
    ] {
        parameters::set_value(core, owner, scenario_id, key, Some(dec(value)?)).await?;
    }
    Ok(())
}

/// A quarterly retail model, 2026 Q1 – 2028 Q4: stores × sales per store, rent per store.
async fn retail(core: &Core, owner: &Caller, organization_id: Uuid) -> AppResult<()> {
    let start = date(2026, 1)?;
    let model = models::create(
        core,
        owner,
        organization_id,
        NewModel {
            name: "Retail expansion".into(),
            description: Some(
                "Quarterly store roll-out: store count, sales per store, rent.".into(),
            ),
            currency: "EUR".into(),
            period_granularity: PeriodGranularity::Quarter,
            start_period: start,
            end_period: date(2028, 10)?,
        },
    )
    .await?
    .id;
    use MetricUnit::{Currency, Number, Percent, Ratio};
    parameter(
        core,
        owner,
        model,
        "cogs_ratio",
        "COGS as a share of sales",
        Ratio,
        "0.58",
    )
    .await?;
    parameter(
        core,
        owner,
        model,
        "rent_per_store",
        "Rent per store and quarter",
        Currency,
        "45000",
    )
    .await?;
    for (key, name, unit, formula) in [
        ("stores", "Stores open", Number, None),
        ("sales_per_store", "Sales per store", Currency, None),
        (
            "revenue",
            "Revenue",
            Currency,
            Some("stores * sales_per_store"),
        ),
        (
            "gross_profit",
            "Gross profit",
            Currency,
            Some("revenue * (1 - cogs_ratio)"),
        ),
        ("rent", "Rent", Currency, Some("stores * rent_per_store")),
        (
            "contribution",
            "Store contribution",
            Currency,
            Some("gross_profit - rent"),
        ),
        (
            "contribution_margin",
            "Contribution margin",
            Percent,
            Some("contribution / revenue"),
        ),
        (
            "new_stores",
            "Stores opened in the quarter",
            Number,
            Some("max(stores - stores[-1], 0)"),
        ),
    ] {
        metric(core, owner, model, key, name, unit, formula).await?;
    }
    let base = scenario(
        core,
        owner,
        model,
        "Base",
        ScenarioKind::Base,
        None,
        "Two openings a quarter.",
    )
    .await?;
    let upside = scenario(
        core,
        owner,
        model,
        "Upside",
        ScenarioKind::Upside,
        Some(base),
        "Four openings a quarter from 2027.",
    )
    .await?;
    let downside = scenario(
        core,
        owner,
        model,
        "Downside",
        ScenarioKind::Downside,
        Some(base),
        "Weaker sales, dearer goods.",
    )
    .await?;
    let mut values = series(
        "stores",
        start,
        3,
        &[
            "40", "42", "44", "46", "48", "50", "52", "54", "56", "58", "60", "62",
        ],
    )?;
    values.extend(series(
        "sales_per_store",
        start,
        3,
        &[
            "210000", "214000", "226000", "241000", "216000", "221000", "233000", "249000",
            "222000", "228000", "240000", "256000",
        ],
    )?);
    values::upsert(core, owner, base, values).await?;
    values::upsert(
        core,
        owner,
        upside,
        series(
            "stores",
            date(2027, 1)?,
            3,
            &["50", "54", "58", "62", "66", "70", "74", "78"],
        )?,
    )
    .await?;
    values::upsert(
        core,
        owner,
        downside,
        series(
            "sales_per_store",
            start,
            3,
            &["200000", "203000", "212000", "224000"],
        )?,
    )
    .await?;
    parameters::set_value(core, owner, downside, "cogs_ratio", Some(dec("0.61")?)).await?;
    Ok(())
}
