//! The contract's files: the design target (shared, or the repository's copy), the exported
//! schema, and the allow-list of items not built yet.

use std::collections::BTreeSet;

use super::diff::{ContractReport, compare, render_list};
use super::model::parse_model;

/// The design contract as the team keeps it, beside the repository.
pub const SHARED_TARGET_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/design/schema.target.graphql"
);
/// The copy of the contract the repository carries, so a clone without `../shared` still checks
/// its schema; `vendored_target_is_current` keeps it equal to the shared one where that exists.
pub const TARGET_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/schema.target.graphql"
);
pub const ACTUAL_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
pub const PENDING_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/contract_pending.txt"
);
pub const UPDATE_ENV: &str = "FV_UPDATE_CONTRACT_PENDING";

/// Written when regenerating a pending file that has no header of its own.
pub const DEFAULT_PENDING_HEADER: &str = "\
# Target schema items not built yet: one item per line, exactly as the contract report prints them.
# Lines starting with `#` and blank lines are ignored. This list may only shrink: contract_is_complete
# fails when an item here is built (remove the line) or when something missing is not listed here.
# Regenerate: FV_UPDATE_CONTRACT_PENDING=1 cargo test --test api contract_is_complete";

pub fn read_file(path: &str, what: &str, hint: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {what} at {path}: {e}\n{hint}"),
    }
}

/// Parses both files and compares them; panics with a readable message when a file is absent or
/// not valid SDL, since no contract check is possible then.
pub fn load_report() -> ContractReport {
    report_against(TARGET_PATH)
}

/// The exported schema compared with the contract at `target_path`.
pub fn report_against(target_path: &str) -> ContractReport {
    let target = read_file(
        target_path,
        "the design contract",
        "The repository carries it in tests/api/ (a copy of ../shared/design/).",
    );
    let actual = read_file(
        ACTUAL_PATH,
        "the exported schema",
        "schema.graphql has not been generated yet: export the Rust schema's SDL \
         (async-graphql `Schema::sdl()`) to schema.graphql at the repository root.",
    );
    let target = parse_model(&target).unwrap_or_else(|e| panic!("{target_path}: {e}"));
    let actual = parse_model(&actual).unwrap_or_else(|e| panic!("{ACTUAL_PATH}: {e}"));
    compare(&target, &actual)
}

/// Items listed in the pending file; `#` comments and blank lines are skipped.
pub fn parse_pending(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The leading block of `#` lines, kept when the file is regenerated.
pub fn pending_header(text: &str) -> String {
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .collect();
    if header.is_empty() {
        DEFAULT_PENDING_HEADER.to_string()
    } else {
        header.join("\n")
    }
}

/// What `contract_is_complete` checks, separated from I/O so it can be unit tested.
/// Returns the failure message, if any.
pub fn check_pending(missing: &[String], pending: &[String]) -> Option<String> {
    let pending_set: BTreeSet<&str> = pending.iter().map(String::as_str).collect();
    let missing_set: BTreeSet<&str> = missing.iter().map(String::as_str).collect();
    let unexpected: Vec<String> = missing
        .iter()
        .filter(|m| !pending_set.contains(m.as_str()))
        .cloned()
        .collect();
    let done: Vec<String> = pending
        .iter()
        .filter(|p| !missing_set.contains(p.as_str()))
        .cloned()
        .collect();
    let mut msg = String::new();
    if !unexpected.is_empty() {
        msg.push_str(&render_list(
            "missing from schema.graphql but not listed in tests/api/contract_pending.txt \
             (removed or renamed? the pending list may only shrink)",
            &unexpected,
        ));
    }
    if !done.is_empty() {
        msg.push_str(&render_list(
            "built now: remove these lines from tests/api/contract_pending.txt",
            &done,
        ));
    }
    (!msg.is_empty()).then_some(msg)
}
