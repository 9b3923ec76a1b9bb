//! Organization and membership rows, and the role ladder.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    db::schema::{memberships, organizations},
    domain::{
        audit::{Audited, Versioned},
        text_enum::text_enum,
    },
};

text_enum! {
    /// A member's role, lowest to highest: the derived `Ord` is the ladder (VIEWER < … < OWNER).
    pub enum OrgRole {
        /// Reads models, scenarios, metrics.
        Viewer => "VIEWER",
        /// Also creates and edits models, scenarios, metrics, values.
        Analyst => "ANALYST",
        /// Also manages members, API keys, reads audit history.
        Admin => "ADMIN",
        /// Also deletes or renames the organization, transfers ownership.
        Owner => "OWNER",
    }
}

/// An organization that is not deleted.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
pub struct OrganizationRow {
    /// Primary key.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// URL-safe unique handle.
    pub slug: String,
    /// Free-form settings.
    pub settings: Value,
    /// Optimistic-concurrency version.
    pub version: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Months of audit events kept in the table (`None`: all of them); see `audit::retention`.
    pub audit_retention_months: Option<i32>,
}

impl Audited for OrganizationRow {
    const ENTITY: &'static str = "Organization";
    const NOUN: &'static str = "organization";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({"name": self.name, "slug": self.slug, "settings": self.settings})
    }
}

impl Versioned for OrganizationRow {
    fn version(&self) -> i32 {
        self.version
    }
}

/// A user's membership of an organization.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = memberships, check_for_backend(diesel::pg::Pg))]
pub struct MembershipRow {
    /// The organization.
    pub organization_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// The member's role.
    pub role: OrgRole,
    /// Who added them.
    pub invited_by: Option<Uuid>,
    /// When they joined.
    pub created_at: DateTime<Utc>,
}

/// A membership's events name the member: the organization is the trail itself.
impl Audited for MembershipRow {
    const ENTITY: &'static str = "Membership";
    const NOUN: &'static str = "member";

    fn audit_id(&self) -> Uuid {
        self.user_id
    }

    fn audit_values(&self) -> Value {
        json!({"userId": self.user_id, "role": self.role.as_str()})
    }
}

/// Check a slug: 3–63 characters of `a-z`, `0-9` and inner hyphens.
pub fn validate_slug(raw: &str, field: &str) -> crate::error::AppResult<String> {
    let slug = raw.trim();
    let ok = (3..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(crate::error::AppError::bad_input(
            field,
            "a slug has 3 to 63 characters: lowercase letters, digits and inner hyphens",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_lowest_to_highest() {
        assert!(
            OrgRole::Viewer < OrgRole::Analyst
                && OrgRole::Analyst < OrgRole::Admin
                && OrgRole::Admin < OrgRole::Owner
        );
        assert_eq!("ADMIN".parse::<OrgRole>().unwrap(), OrgRole::Admin);
        assert!("admin".parse::<OrgRole>().is_err());
    }

    #[test]
    fn slugs() {
        assert!(validate_slug("acme-corp", "s").is_ok());
        for bad in ["ab", "Acme", "-acme", "acme-", "acme corp", "acme_corp"] {
            assert!(validate_slug(bad, "s").is_err(), "{bad}");
        }
    }
}
