//! The `reports` row, its format and status, and what its audit events show.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    db::schema::reports,
    domain::{audit::Audited, text_enum::text_enum},
};

text_enum! {
    /// The file format of a report.
    pub enum ReportFormat {
        /// RFC 4180 comma-separated values, UTF-8.
        Csv => "CSV",
        /// An Office Open XML workbook.
        Xlsx => "XLSX",
    }
}

text_enum! {
    /// Where a report is in its life.
    pub enum ReportStatus {
        /// Queued or being generated.
        Pending => "PENDING",
        /// Generated: the file is in the store.
        Ready => "READY",
        /// Generation failed (`error` says why).
        Failed => "FAILED",
    }
}

impl ReportFormat {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv",
            ReportFormat::Xlsx => "xlsx",
        }
    }

    /// The `Content-Type` the file is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }
}

/// One generated (or pending, or failed) report.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reports, check_for_backend(diesel::pg::Pg))]
pub struct ReportRow {
    /// Primary key.
    pub id: Uuid,
    /// The model's organization (row-level security reads it).
    pub organization_id: Uuid,
    /// The model.
    pub model_id: Uuid,
    /// The name the client gave; the file is `<name>.<extension>`.
    pub name: String,
    /// CSV or XLSX.
    pub format: ReportFormat,
    /// PENDING, READY or FAILED.
    pub status: ReportStatus,
    /// The scenarios, in the order asked for (a PostgreSQL array: elements are never null).
    pub scenario_ids: Vec<Option<Uuid>>,
    /// The metrics asked for, in order; empty: every metric in display order.
    pub metric_keys: Vec<Option<String>>,
    /// First period exported; the timeline's first when `None`.
    pub from_period: Option<NaiveDate>,
    /// Last period exported; the timeline's last when `None`.
    pub to_period: Option<NaiveDate>,
    /// The file's length, once READY.
    pub byte_size: Option<i64>,
    /// The file's SHA-256, once READY.
    pub sha256: Option<Vec<u8>>,
    /// The file's key in the object store, once READY.
    pub storage_key: Option<String>,
    /// Why it FAILED.
    pub error: Option<String>,
    /// Who asked for it.
    pub created_by: Option<Uuid>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it became READY or FAILED.
    pub completed_at: Option<DateTime<Utc>>,
}

impl ReportRow {
    /// The scenarios, in order.
    pub fn scenarios(&self) -> Vec<Uuid> {
        self.scenario_ids.iter().flatten().copied().collect()
    }

    /// The metrics asked for, in order (empty: every metric).
    pub fn metrics(&self) -> Vec<String> {
        self.metric_keys.iter().flatten().cloned().collect()
    }

    /// The digest as lowercase hex.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.as_deref().map(hex::encode)
    }

    /// The name a download is saved under.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, self.format.extension())
    }
}

impl Audited for ReportRow {
    const ENTITY: &'static str = "Report";
    const NOUN: &'static str = "report";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({
            "modelId": self.model_id,
            "name": self.name,
            "format": self.format.as_str(),
            "status": self.status.as_str(),
            "scenarioIds": self.scenarios(),
            "metricKeys": self.metrics(),
            "from": self.from_period,
            "to": self.to_period,
            "byteSize": self.byte_size,
            "sha256": self.sha256_hex(),
        })
    }
}

/// The key of a report's file in the object store.
pub fn storage_key(model_id: Uuid, report_id: Uuid) -> String {
    format!("reports/{model_id}/{report_id}")
}
