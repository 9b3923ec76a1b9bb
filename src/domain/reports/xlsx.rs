//! The XLSX form of a report: a `Cover` sheet (the model, the scenarios with their bases, the
//! parameters each scenario uses, who generated it and when), one sheet per scenario (metrics
//! down, periods across, values as numbers formatted by unit), and a `Compare` sheet with the
//! deltas against the first scenario when there are two or more. Every data sheet freezes its
//! header row and its label columns, so periods and metric names stay in view.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::content::{ReportContent, shown};
use crate::{
    domain::modelling::{MetricUnit, selection::delta},
    error::{AppError, AppResult},
};

/// The fixed columns before the periods: metric name, key and unit (or row label).
pub const LABEL_COLUMNS: u16 = 3;

/// The cover sheet's name.
pub const COVER: &str = "Cover";

/// The comparison sheet's name.
pub const COMPARE: &str = "Compare";

/// Excel's limit on a sheet name.
const MAX_SHEET_NAME: usize = 31;

/// Valid, distinct sheet names for `names` (scenario names), none equal to [`COVER`] or
/// [`COMPARE`]: the characters Excel refuses (`[]:*?/\`) become `_`, a leading or trailing
/// apostrophe is dropped, names are cut to 31 characters, and a name already taken (Excel
/// compares them case-insensitively) gets ` (2)`, ` (3)`, … within the limit.
pub fn sheet_names(names: &[&str]) -> Vec<String> {
    let mut taken: HashSet<String> = [COVER, COMPARE].iter().map(|n| n.to_lowercase()).collect();
    names
        .iter()
        .map(|raw| {
            let cleaned: String = raw
                .chars()
                .map(|c| {
                    if "[]:*?/\\".contains(c) || c.is_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            let cleaned = cleaned.trim().trim_matches('\'').trim().to_owned();
            let base = if cleaned.is_empty() {
                "Scenario".to_owned()
            } else {
                cleaned
            };
            let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
            let mut name = cut(&base, MAX_SHEET_NAME);
            let mut n = 2;
            while taken.contains(&name.to_lowercase()) || name.eq_ignore_ascii_case("history") {
                let suffix = format!(" ({n})");
                name = format!(
                    "{}{suffix}",
                    cut(&base, MAX_SHEET_NAME - suffix.chars().count()).trim_end()
                );
                n += 1;
            }
            taken.insert(name.to_lowercase());
            name
        })
        .collect()
}

/// The number format of a unit: money with the model's currency code, percentages of
/// fractions (`0.125` shows as `12.50%`), ratios to four places, plain numbers as they are.
pub fn unit_format(unit: MetricUnit, currency: &str) -> String {
    match unit {
        // The code is quoted: Excel would read some letters as format codes.
        MetricUnit::Currency => {
            let code: String = currency
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            format!("#,##0.00 \"{code}\";-#,##0.00 \"{code}\"")
        }
        MetricUnit::Percent => "0.00%".to_owned(),
        MetricUnit::Ratio => "0.0000".to_owned(),
        MetricUnit::Number => "General".to_owned(),
    }
}

fn xlsx(err: XlsxError) -> AppError {
    AppError::internal(err)
}

/// A period as an Excel date.
fn excel_date(date: NaiveDate) -> AppResult<ExcelDateTime> {
    let year = u16::try_from(date.year()).map_err(AppError::internal)?;
    let month = u8::try_from(date.month()).map_err(AppError::internal)?;
    let day = u8::try_from(date.day()).map_err(AppError::internal)?;
    ExcelDateTime::from_ymd(year, month, day).map_err(xlsx)
}

/// A value as the number Excel stores: the nearest `f64` to the API's rounded value, through
/// its text (`to_f64` divides by a power of ten in floating point, which may round twice).
fn number(value: Decimal) -> Option<f64> {
    value.to_string().parse().ok()
}

/// The column of period `i`.
fn period_column(i: usize) -> AppResult<u16> {
    u16::try_from(i)
        .ok()
        .and_then(|i| i.checked_add(LABEL_COLUMNS))
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("too many periods for a sheet")))
}

fn row_number(i: usize) -> AppResult<u32> {
    u32::try_from(i).map_err(AppError::internal)
}

/// The header row of a data sheet: the three label titles, then the periods as dates.
fn header(
    sheet: &mut Worksheet,
    content: &ReportContent,
    labels: [&str; 3],
    bold: &Format,
    date: &Format,
) -> AppResult<()> {
    for (col, label) in (0u16..).zip(labels) {
        sheet
            .write_string_with_format(0, col, label, bold)
            .map_err(xlsx)?;
    }
    for (i, period) in content.periods.iter().enumerate() {
        sheet
            .write_datetime_with_format(0, period_column(i)?, excel_date(*period)?, date)
            .map_err(xlsx)?;
    }
    sheet.set_freeze_panes(1, LABEL_COLUMNS).map_err(xlsx)?;
    sheet.set_column_width(0, 32).map_err(xlsx)?;
    sheet.set_column_width(1, 20).map_err(xlsx)?;
    sheet.set_column_width(2, 12).map_err(xlsx)?;
    Ok(())
}

/// Write one row of values from column [`LABEL_COLUMNS`] on; a null stays an empty cell.
fn values(
    sheet: &mut Worksheet,
    row: u32,
    points: impl Iterator<Item = Option<Decimal>>,
    format: &Format,
) -> AppResult<()> {
    for (i, value) in points.enumerate() {
        if let Some(v) = value.and_then(number) {
            sheet
                .write_number_with_format(row, period_column(i)?, v, format)
                .map_err(xlsx)?;
        }
    }
    Ok(())
}

/// The cover sheet.
fn cover(sheet: &mut Worksheet, content: &ReportContent, bold: &Format) -> AppResult<()> {
    let model = &content.model;
    let first = content.periods.first().map(ToString::to_string);
    let last = content.periods.last().map(ToString::to_string);
    let metrics = content
        .metrics
        .iter()
        .map(|m| m.key.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let facts = [
        ("Report", content.name.clone()),
        ("Model", model.name.clone()),
        ("Currency", model.currency.clone()),
        ("Periods", model.period_granularity.as_str().to_owned()),
        (
            "Timeline",
            format!("{} … {}", model.start_period, model.end_period),
        ),
        (
            "Exported",
            format!(
                "{} … {} ({} periods)",
                first.unwrap_or_default(),
                last.unwrap_or_default(),
                content.periods.len()
            ),
        ),
        ("Metrics", metrics),
        (
            "Generated by",
            content
                .generated_by
                .clone()
                .unwrap_or_else(|| "(an API key or a deleted account)".to_owned()),
        ),
        (
            "Generated at",
            content
                .generated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ];
    let mut row = 0u32;
    for (label, value) in facts {
        sheet
            .write_string_with_format(row, 0, label, bold)
            .map_err(xlsx)?;
        sheet.write_string(row, 1, value).map_err(xlsx)?;
        row += 1;
    }
    row += 1;
    for (col, title) in (0u16..).zip(["Scenario", "Kind", "Bases (nearest first)"]) {
        sheet
            .write_string_with_format(row, col, title, bold)
            .map_err(xlsx)?;
    }
    for s in &content.scenarios {
        row += 1;
        sheet.write_string(row, 0, &s.scenario.name).map_err(xlsx)?;
        sheet
            .write_string(row, 1, s.scenario.kind.as_str())
            .map_err(xlsx)?;
        sheet
            .write_string(row, 2, s.bases.join(" → "))
            .map_err(xlsx)?;
    }
    row += 2;
    for (col, title) in (0u16..).zip(["Scenario", "Parameter", "Key", "Unit", "Value", "Source"]) {
        sheet
            .write_string_with_format(row, col, title, bold)
            .map_err(xlsx)?;
    }
    for s in &content.scenarios {
        for p in &s.parameters {
            row += 1;
            let source = if p.is_default {
                "default".to_owned()
            } else {
                match p.inherited_from {
                    Some(from) => content
                        .scenarios
                        .iter()
                        .find(|c| c.scenario.id == from)
                        .map(|c| c.scenario.name.clone())
                        .or_else(|| s.bases.first().cloned())
                        .map_or_else(|| "inherited".to_owned(), |n| format!("inherited from {n}")),
                    None => "this scenario".to_owned(),
                }
            };
            sheet.write_string(row, 0, &s.scenario.name).map_err(xlsx)?;
            sheet
                .write_string(row, 1, &p.parameter.name)
                .map_err(xlsx)?;
            sheet.write_string(row, 2, &p.parameter.key).map_err(xlsx)?;
            sheet
                .write_string(row, 3, p.parameter.unit.as_str())
                .map_err(xlsx)?;
            let format =
                Format::new().set_num_format(unit_format(p.parameter.unit, &model.currency));
            if let Some(v) = shown(Some(p.value)).and_then(number) {
                sheet
                    .write_number_with_format(row, 4, v, &format)
                    .map_err(xlsx)?;
            }
            sheet.write_string(row, 5, source).map_err(xlsx)?;
        }
    }
    sheet.set_column_width(0, 24).map_err(xlsx)?;
    sheet.set_column_width(1, 40).map_err(xlsx)?;
    sheet.set_column_width(2, 28).map_err(xlsx)?;
    Ok(())
}

/// The workbook's bytes.
pub fn write(content: &ReportContent) -> AppResult<Vec<u8>> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let date = Format::new().set_bold().set_num_format("yyyy-mm-dd");
    let currency = &content.model.currency;
    let formats: Vec<Format> = content
        .metrics
        .iter()
        .map(|m| Format::new().set_num_format(unit_format(m.unit, currency)))
        .collect();
    let plain = Format::new();

    cover(
        workbook.add_worksheet().set_name(COVER).map_err(xlsx)?,
        content,
        &bold,
    )?;

    let names: Vec<&str> = content
        .scenarios
        .iter()
        .map(|s| s.scenario.name.as_str())
        .collect();
    for (scenario, name) in content.scenarios.iter().zip(sheet_names(&names)) {
        let sheet = workbook.add_worksheet().set_name(name).map_err(xlsx)?;
        header(sheet, content, ["Metric", "Key", "Unit"], &bold, &date)?;
        for (i, series) in scenario.series.iter().enumerate() {
            let row = row_number(i + 1)?;
            sheet
                .write_string(row, 0, &series.metric.name)
                .map_err(xlsx)?;
            sheet
                .write_string(row, 1, &series.metric.key)
                .map_err(xlsx)?;
            sheet
                .write_string(row, 2, series.metric.unit.as_str())
                .map_err(xlsx)?;
            let format = formats.get(i).unwrap_or(&plain);
            values(
                sheet,
                row,
                series.points.iter().map(|p| shown(p.value)),
                format,
            )?;
        }
    }

    if let [base, others @ ..] = content.scenarios.as_slice()
        && !others.is_empty()
    {
        let sheet = workbook.add_worksheet().set_name(COMPARE).map_err(xlsx)?;
        header(sheet, content, ["Metric", "Key", "Row"], &bold, &date)?;
        let percent = Format::new().set_num_format("0.00\"%\"");
        let mut row = 0u32;
        for (m, metric) in content.metrics.iter().enumerate() {
            let format = formats.get(m).unwrap_or(&plain);
            let base_points: Vec<Option<Decimal>> = base
                .series
                .get(m)
                .map(|s| s.points.iter().map(|p| p.value).collect())
                .unwrap_or_default();
            let mut label = |sheet: &mut Worksheet, text: String| -> AppResult<u32> {
                row += 1;
                sheet.write_string(row, 0, &metric.name).map_err(xlsx)?;
                sheet.write_string(row, 1, &metric.key).map_err(xlsx)?;
                sheet.write_string(row, 2, text).map_err(xlsx)?;
                Ok(row)
            };
            let at = label(sheet, base.scenario.name.clone())?;
            values(sheet, at, base_points.iter().map(|v| shown(*v)), format)?;
            for other in others {
                let other_points: Vec<Option<Decimal>> = other
                    .series
                    .get(m)
                    .map(|s| s.points.iter().map(|p| p.value).collect())
                    .unwrap_or_default();
                let deltas: Vec<(Option<Decimal>, Option<Decimal>)> = base_points
                    .iter()
                    .zip(&other_points)
                    .map(|(b, o)| delta(*b, *o))
                    .collect();
                let at = label(sheet, other.scenario.name.clone())?;
                values(sheet, at, other_points.iter().map(|v| shown(*v)), format)?;
                let at = label(sheet, format!("Δ {}", other.scenario.name))?;
                values(sheet, at, deltas.iter().map(|d| shown(d.0)), format)?;
                let at = label(sheet, format!("Δ% {}", other.scenario.name))?;
                values(sheet, at, deltas.iter().map(|d| shown(d.1)), &percent)?;
            }
        }
    }
    workbook.save_to_buffer().map_err(xlsx)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx};
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        modelling::{
            MetricKind, ModelRow, ModelStatus, PeriodGranularity, ScenarioKind,
            metrics::MetricRow,
            scenarios::ScenarioRow,
            selection::{Point, Series},
        },
        reports::content::{ReportContent, ScenarioContent},
    };

    /// One scenario × `metrics` metrics × `periods` monthly periods from Jan 2000, every value
    /// set (with more than six decimals: the writer rounds them as the API does).
    fn synthetic(metrics: usize, periods: usize) -> ReportContent {
        let now = Utc::now();
        let start = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date");
        let dates: Vec<NaiveDate> = (0..periods)
            .map(|i| {
                start
                    .checked_add_months(chrono::Months::new(u32::try_from(i).expect("small")))
                    .expect("a month")
            })
            .collect();
        let model = ModelRow {
            id: Uuid::new_v4(),
            organization_id: Uuid::new_v4(),
            name: "Synthetic".into(),
            description: None,
            currency: "USD".into(),
            period_granularity: PeriodGranularity::Month,
            start_period: dates[0],
            end_period: dates[periods - 1],
            status: ModelStatus::Active,
            created_by: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let units = [
            MetricUnit::Currency,
            MetricUnit::Percent,
            MetricUnit::Ratio,
            MetricUnit::Number,
        ];
        let metric_rows: Vec<MetricRow> = (0..metrics)
            .map(|m| MetricRow {
                id: Uuid::new_v4(),
                model_id: model.id,
                key: format!("metric_{m}"),
                name: format!("Metric {m}"),
                unit: units[m % units.len()],
                kind: MetricKind::Input,
                formula: None,
                description: None,
                display_order: i32::try_from(m).expect("small"),
                version: 1,
                created_at: now,
            })
            .collect();
        let series = metric_rows
            .iter()
            .enumerate()
            .map(|(m, metric)| Series {
                metric: metric.clone(),
                points: dates
                    .iter()
                    .enumerate()
                    .map(|(p, period)| Point {
                        period: *period,
                        value: Some(
                            Decimal::from(i64::try_from(m * 1_000 + p).expect("small"))
                                / Decimal::from(7),
                        ),
                    })
                    .collect(),
            })
            .collect();
        ReportContent {
            name: "Ten thousand cells".into(),
            periods: dates,
            metrics: metric_rows,
            scenarios: vec![ScenarioContent {
                scenario: ScenarioRow {
                    id: Uuid::new_v4(),
                    model_id: model.id,
                    name: "Base".into(),
                    kind: ScenarioKind::Base,
                    description: None,
                    base_scenario_id: None,
                    is_locked: false,
                    created_by: None,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                },
                bases: Vec::new(),
                parameters: Vec::new(),
                series,
            }],
            model,
            generated_by: Some("Bench".into()),
            generated_at: now,
        }
    }

    /// The README's figure: `cargo test --release --lib ten_thousand_cell_xlsx -- --nocapture`
    /// prints the time and size of a 10,000-cell workbook (1 scenario × 20 metrics × 500
    /// periods). Not asserted on time; asserted on content (every cell present, rounded).
    #[test]
    fn ten_thousand_cell_xlsx() {
        let content = synthetic(20, 500);
        let started = std::time::Instant::now();
        let bytes = write(&content).expect("a workbook");
        let elapsed = started.elapsed();
        println!(
            "10,000-cell XLSX: {} bytes ({} KiB) in {:.1} ms",
            bytes.len(),
            bytes.len().div_ceil(1024),
            elapsed.as_secs_f64() * 1000.0
        );
        let mut workbook = Xlsx::new(Cursor::new(bytes)).expect("readable");
        let range = workbook.worksheet_range("Base").expect("the sheet");
        let numbers = range
            .cells()
            .filter(|(_, _, v)| matches!(v, Data::Float(_)))
            .count();
        assert_eq!(numbers, 10_000);
        // metric_1 at period 3: (1000 + 3) / 7 = 143.285714285… → 143.285714.
        assert_eq!(range.get_value((2, 3 + 3)), Some(&Data::Float(143.285_714)));
    }

    #[test]
    fn sheet_names_are_valid_and_distinct() {
        let long = "A very long scenario name that goes on and on";
        let names = sheet_names(&[
            "Base",
            "base",
            "Q1/Q2: [draft]?",
            long,
            long,
            "Cover",
            "'quoted'",
            "",
            "History",
        ]);
        assert_eq!(names[0], "Base");
        assert_eq!(names[1], "base (2)");
        assert_eq!(names[2], "Q1_Q2_ _draft__");
        assert_eq!(names[3].chars().count(), 31);
        assert!(names[4].ends_with(" (2)") && names[4].chars().count() <= 31);
        assert_eq!(names[5], "Cover (2)");
        assert_eq!(names[6], "quoted");
        assert_eq!(names[7], "Scenario");
        assert_eq!(names[8], "History (2)");
        let lower: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(lower.len(), names.len());
        for name in &names {
            assert!(
                !name.contains(['[', ']', ':', '*', '?', '/', '\\']),
                "{name}"
            );
        }
    }

    #[test]
    fn units_have_number_formats() {
        assert_eq!(
            unit_format(MetricUnit::Currency, "EUR"),
            "#,##0.00 \"EUR\";-#,##0.00 \"EUR\""
        );
        assert_eq!(unit_format(MetricUnit::Percent, "EUR"), "0.00%");
        assert_eq!(unit_format(MetricUnit::Ratio, "EUR"), "0.0000");
    }
}
