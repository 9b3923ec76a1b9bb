//! Rules shared by every named thing (organizations, models, scenarios, parameters, metrics,
//! API keys), and the one "stale version" conflict of optimistic concurrency.

use crate::{
    domain::limits::{MAX_NAME_LEN, text},
    error::{AppError, AppResult},
};

/// Check a name: no NUL, 1 to [`MAX_NAME_LEN`] characters after trimming; returns it trimmed.
pub fn validate_name(raw: &str, field: &str) -> AppResult<String> {
    let name = text(raw, field, usize::MAX)?.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::bad_input(
            field,
            format!("the name must have 1 to {MAX_NAME_LEN} characters"),
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
