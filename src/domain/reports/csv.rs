//! The CSV form of a report (RFC 4180, UTF-8, CRLF line ends): a header
//! `scenario,metric_key,metric_name,unit,<period>…` (periods as ISO dates), then one row per
//! scenario × metric with its values as the API writes them (half-even, 6 places); an empty
//! cell is a null value.

use super::content::{ReportContent, shown};
use crate::{
    domain::modelling::numbers::format_output,
    error::{AppError, AppResult},
};

/// The file's bytes.
pub fn write(content: &ReportContent) -> AppResult<Vec<u8>> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut header: Vec<String> = ["scenario", "metric_key", "metric_name", "unit"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    header.extend(content.periods.iter().map(ToString::to_string));
    out.write_record(&header).map_err(AppError::internal)?;
    for scenario in &content.scenarios {
        for series in &scenario.series {
            let mut record = vec![
                scenario.scenario.name.clone(),
                series.metric.key.clone(),
                series.metric.name.clone(),
                series.metric.unit.as_str().to_owned(),
            ];
            record.extend(
                series
                    .points
                    .iter()
                    .map(|p| shown(p.value).map(format_output).unwrap_or_default()),
            );
            out.write_record(&record).map_err(AppError::internal)?;
        }
    }
    out.into_inner().map_err(AppError::internal)
}
