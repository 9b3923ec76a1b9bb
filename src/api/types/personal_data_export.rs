//! `type PersonalDataExport`.

use async_graphql::{Json, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::User;

/// Everything stored about the caller, as one JSON document (`data`): `account`, `sessions`
/// (without token hashes), `memberships`, `apiKeys` they created (without key hashes), `models`,
/// `scenarios` and `modelFiles` they created, `reports` (empty until reports exist) and
/// `auditEvents` (every event they acted, this export's own included).
#[derive(SimpleObject)]
pub struct PersonalDataExport {
    /// The caller.
    pub user: User,
    /// When the export was made.
    pub generated_at: DateTime<Utc>,
    /// The document; column names as stored (snake_case).
    pub data: Json<Value>,
}
