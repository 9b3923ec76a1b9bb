//! Rules shared by every named thing (organizations, models, scenarios, parameters, metrics,
//! API keys), and the one "stale version" conflict of optimistic concurrency.

use crate::error::{AppError, AppResult};

/// Check a display name: 1–200 characters after trimming; returns it trimmed.
pub fn validate_name(raw: &str, field: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_input(
            field,
            "the name must have 1 to 200 characters",
        ));
    }
    Ok(name.to_owned())
}

/// The conflict of an update that names a version someone else already replaced.
pub fn stale_version(entity: &str, current: i32) -> AppError {
    AppError::Conflict(format!(
        "the {entity} was changed by someone else (now at version {current}): reload it and retry"
    ))
}
