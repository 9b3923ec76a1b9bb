//! User rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::users;

/// A user as the API sees it; the password hash is deliberately not part of it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    /// Primary key.
    pub id: Uuid,
    /// As typed at registration; compared case-insensitively.
    pub email: String,
    /// Shown to other members.
    pub display_name: String,
    /// Inactive users cannot sign in.
    pub is_active: bool,
    /// Platform operator.
    pub is_superadmin: bool,
    /// IANA zone name.
    pub timezone: String,
    /// BCP 47 tag.
    pub locale: String,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Normalise and check an email address: trimmed, one `@`, a dot in the domain, no spaces.
pub fn validate_email(raw: &str, field: &str) -> crate::error::AppResult<String> {
    use crate::domain::limits::{MAX_EMAIL_LEN, text};
    let email = text(raw, field, usize::MAX)?.trim();
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(email.to_owned())
    } else {
        Err(crate::error::AppError::bad_input(
            field,
            "not a valid email address",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_email;

    #[test]
    fn emails() {
        assert_eq!(
            validate_email(" Ann@Example.com ", "e").unwrap(),
            "Ann@Example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.io",
            "a b@x.io",
            "ann@localhost",
            "a@b@c.io",
            "a@.io",
        ] {
            assert!(validate_email(bad, "e").is_err(), "{bad}");
        }
    }
}
