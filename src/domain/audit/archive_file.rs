//! The archive file of one organization's month: JSON Lines, one event per line, in sequence
//! order. A line is the canonical JSON (sorted keys, no white space) of the hashed document
//! ([`super::record::hashed_document`]) plus `sequence`, `prev_hash` and `hash` (hex), so a file
//! is verified on its own: every line's hash is recomputed from its other fields, and every
//! `prev_hash` must be the previous line's `hash`.

use serde_json::{Map, Value, json};

use super::{
    chain::{canonical_json, chain_hash},
    history::AuditEventRow,
    verify::document_of,
};

/// Where the archive of `organization`'s month `yyyy_mm` (e.g. `2025-03`) lives in the object store.
pub fn archive_key(organization: uuid::Uuid, yyyy_mm: &str) -> String {
    format!("audit-archive/{organization}/{yyyy_mm}.jsonl")
}

/// One event as its archive line (without the newline).
pub fn archive_line(row: &AuditEventRow) -> String {
    let mut document = document_of(row);
    if let Value::Object(map) = &mut document {
        map.insert("sequence".into(), json!(row.id));
        map.insert(
            "prev_hash".into(),
            json!(row.prev_hash.as_deref().map(hex::encode)),
        );
        map.insert("hash".into(), json!(hex::encode(&row.hash)));
    }
    canonical_json(&document)
}

/// What verifying an archive file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Lines read.
    pub events: i64,
    /// Every line is canonical, hashes to its `hash` and links to the line before it.
    pub valid: bool,
    /// The first line (1-based) that does not.
    pub first_broken_line: Option<usize>,
    /// Its sequence, when the line could be read.
    pub first_broken_sequence: Option<i64>,
    /// The first line's sequence.
    pub first_sequence: Option<i64>,
    /// The last line's sequence.
    pub last_sequence: Option<i64>,
    /// The hash the first line follows (`None`: the start of the chain).
    pub prev_hash: Option<Vec<u8>>,
    /// The last line's hash: the next event (in the next archive or the table) follows it.
    pub last_hash: Option<Vec<u8>>,
}

/// One parsed line.
struct CheckedLine {
    sequence: i64,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
    /// Canonical, and its content hashes to its `hash`.
    intact: bool,
}

/// Parse and check one line; `None` when it is not an archive line at all.
fn check_line(line: &str) -> Option<CheckedLine> {
    let value: Value = serde_json::from_str(line).ok()?;
    let canonical = canonical_json(&value) == line;
    let Value::Object(mut map) = value else {
        return None;
    };
    let sequence = map.remove("sequence")?.as_i64()?;
    let prev_hash = match map.remove("prev_hash")? {
        Value::Null => None,
        Value::String(h) => Some(hex::decode(h).ok()?),
        _ => return None,
    };
    let hash = hex::decode(map.remove("hash")?.as_str()?).ok()?;
    let recomputed = chain_hash(prev_hash.as_deref(), &canonical_json(&Value::Object(map)));
    let intact = canonical && recomputed == hash;
    Some(CheckedLine {
        sequence,
        prev_hash,
        hash,
        intact,
    })
}

/// Verify an archive file. `expected_prev`: the hash its first event must follow when known (the
/// previous archive's last hash, `Some(None)` for the start of the chain); `None` accepts the
/// first line's `prev_hash` as the starting point.
pub fn verify_archive(bytes: &[u8], expected_prev: Option<Option<&[u8]>>) -> ArchiveReport {
    let mut report = ArchiveReport {
        valid: true,
        ..ArchiveReport::default()
    };
    let text = String::from_utf8_lossy(bytes);
    let mut previous: Option<Option<Vec<u8>>> = expected_prev.map(|p| p.map(<[u8]>::to_vec));
    let mut last_sequence = i64::MIN;
    for (index, line) in text.lines().enumerate() {
        report.events += 1;
        let checked = check_line(line);
        let sequence = checked.as_ref().map(|c| c.sequence);
        let intact = checked.as_ref().is_some_and(|c| {
            c.intact
                && c.sequence > last_sequence
                && previous.as_ref().is_none_or(|p| *p == c.prev_hash)
        });
        if report.first_sequence.is_none() && index == 0 {
            report.first_sequence = sequence;
            report.prev_hash = checked.as_ref().and_then(|c| c.prev_hash.clone());
        }
        if report.valid && !intact {
            report.valid = false;
            report.first_broken_line = Some(index + 1);
            report.first_broken_sequence = sequence;
        }
        if let Some(line) = checked {
            last_sequence = line.sequence;
            report.last_sequence = Some(line.sequence);
            report.last_hash = Some(line.hash.clone());
            previous = Some(Some(line.hash));
        } else {
            // Nothing to link the next line to: it is judged on its own content.
            previous = None;
        }
    }
    if !text.is_empty() && !text.ends_with('\n') && report.valid {
        report.valid = false;
        report.first_broken_line = Some(text.lines().count());
    }
    report
}

/// The lines of `rows` as one file (each line ends with a newline).
pub fn archive_bytes(rows: &[AuditEventRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 512);
    for row in rows {
        out.extend_from_slice(archive_line(row).as_bytes());
        out.push(b'\n');
    }
    out
}

/// A JSON object of the report, for the CLI.
pub fn report_json(report: &ArchiveReport) -> Value {
    let mut map = Map::new();
    map.insert("events".into(), json!(report.events));
    map.insert("valid".into(), json!(report.valid));
    map.insert("firstBrokenLine".into(), json!(report.first_broken_line));
    map.insert(
        "firstBrokenSequence".into(),
        json!(report.first_broken_sequence),
    );
    map.insert("firstSequence".into(), json!(report.first_sequence));
    map.insert("lastSequence".into(), json!(report.last_sequence));
    map.insert(
        "prevHash".into(),
        json!(report.prev_hash.as_deref().map(hex::encode)),
    );
    map.insert(
        "lastHash".into(),
        json!(report.last_hash.as_deref().map(hex::encode)),
    );
    Value::Object(map)
}
