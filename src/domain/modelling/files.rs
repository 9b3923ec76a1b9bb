//! Model files: the version history of a model's uploaded workbook. Bytes live in the object
//! store ([`crate::domain::storage`]); rows keep the metadata, digest and object key.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::models::{ModelRow, lock_model};
use crate::{
    db::schema::{financial_models, model_files},
    domain::{
        Core,
        audit::{Audited, Trail},
        auth::Caller,
        organizations::{OrgRole, service::require_role},
        storage::StoredObject,
    },
    error::{AppError, AppResult},
};

/// One uploaded version of a model's file.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = model_files, check_for_backend(diesel::pg::Pg))]
pub struct ModelFileRow {
    /// Primary key.
    pub id: Uuid,
    /// The model.
    pub model_id: Uuid,
    /// 1, 2, … per model, in upload order.
    pub version_number: i32,
    /// The name the client sent (its last path component).
    pub file_name: String,
    /// MIME type the client sent (`application/octet-stream` when none or malformed).
    pub content_type: String,
    /// Length in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the content (32 raw bytes).
    pub sha256: Vec<u8>,
    /// Key of the content in the object store.
    pub storage_key: String,
    /// Who uploaded it.
    pub uploaded_by: Option<Uuid>,
    /// Upload time.
    pub created_at: DateTime<Utc>,
}

impl Audited for ModelFileRow {
    const ENTITY: &'static str = "ModelFile";
    const NOUN: &'static str = "file";

    fn audit_id(&self) -> Uuid {
        self.id
    }

    fn audit_values(&self) -> Value {
        json!({
            "modelId": self.model_id,
            "fileName": self.file_name,
            "contentType": self.content_type,
            "versionNumber": self.version_number,
            "sizeBytes": self.size_bytes,
            "sha256": self.sha256_hex(),
        })
    }
}

impl ModelFileRow {
    /// The digest as lowercase hex (what clients compare and the `ETag` carries).
    pub fn sha256_hex(&self) -> String {
        hex::encode(&self.sha256)
    }
}

#[derive(Insertable)]
#[diesel(table_name = model_files)]
struct InsertFile<'a> {
    id: Uuid,
    model_id: Uuid,
    version_number: i32,
    file_name: &'a str,
    content_type: &'a str,
    size_bytes: i64,
    sha256: &'a [u8],
    storage_key: &'a str,
    uploaded_by: Option<Uuid>,
}

/// Used when the client sends no content type or one that is not `type/subtype`.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Keep the last path component of a client's file name (browsers on Windows may send
/// `C:\fakepath\plan.xlsx`), without control characters, at most 255 characters.
fn clean_file_name(raw: &str) -> AppResult<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned();
    if name.is_empty() || name == "." || name == ".." {
        return Err(AppError::bad_input(
            "input.file",
            "the upload needs a file name",
        ));
    }
    if name.chars().count() > 255 {
        return Err(AppError::bad_input(
            "input.file",
            "the file name must have at most 255 characters",
        ));
    }
    Ok(name)
}

/// A content type we are willing to echo back as a response header: `type/subtype` with
/// optional parameters, visible ASCII only. Anything else becomes [`DEFAULT_CONTENT_TYPE`].
fn clean_content_type(raw: Option<&str>) -> String {
    let Some(raw) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return DEFAULT_CONTENT_TYPE.to_owned();
    };
    let essence = raw.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let well_formed = raw.len() <= 255
        && raw.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s));
    if well_formed {
        raw.to_owned()
    } else {
        DEFAULT_CONTENT_TYPE.to_owned()
    }
}

/// A human size: `50 MiB`, `1 KiB`, `1000 bytes`.
fn human_size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Upload a new version of a model's file (ANALYST+). The bytes are stored first, under a fresh
/// key, and only then is the transaction opened: a slow store holds neither a pooled connection
/// nor the model's row lock. When the transaction fails (the model was deleted meanwhile, the
/// caller lost the role, …) the object is removed again, so no row ever names a missing object
/// and no object outlives a refused upload. The model's row lock serialises concurrent uploads,
/// which keeps version numbers dense. The resolver's guard has checked the caller's role before
/// any byte is stored; the transaction checks it again under the lock.
#[tracing::instrument(skip_all, fields(model_id = %model_id))]
pub async fn upload(
    core: &Core,
    caller: &Caller,
    model_id: Uuid,
    file_name: &str,
    content_type: Option<&str>,
    bytes: Bytes,
) -> AppResult<ModelFileRow> {
    let limit = core.files.max_upload_bytes;
    if bytes.len() > limit {
        return Err(AppError::bad_input(
            "input.file",
            format!(
                "the file is {} bytes: files may have at most {} ({limit} bytes)",
                bytes.len(),
                human_size(limit)
            ),
        ));
    }
    let file_name = clean_file_name(file_name)?;
    let content_type = clean_content_type(content_type);
    let size_bytes = i64::try_from(bytes.len()).map_err(AppError::internal)?;
    // Hashing 50 MiB takes a noticeable fraction of a second: off the async workers.
    let digest = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || Sha256::digest(&bytes).to_vec())
            .await
            .map_err(AppError::internal)?
    };
    let id = Uuid::new_v4();
    let storage_key = format!("models/{model_id}/{id}");
    core.files.put(&storage_key, bytes).await?;

    let result = record_upload(
        core,
        caller,
        InsertFile {
            id,
            model_id,
            version_number: 0,
            file_name: &file_name,
            content_type: &content_type,
            size_bytes,
            sha256: &digest,
            storage_key: &storage_key,
            uploaded_by: caller.viewer.user_id(),
        },
    )
    .await;
    if result.is_err() {
        core.files.delete_best_effort(&storage_key).await;
    }
    result
}

/// The upload's transaction: lock the model, check the role, number the version, insert the row
/// and its audit event.
#[tracing::instrument(skip_all)]
async fn record_upload(
    core: &Core,
    caller: &Caller,
    mut file: InsertFile<'_>,
) -> AppResult<ModelFileRow> {
    core.transaction(async |conn| {
        let model = lock_model(conn, caller, file.model_id, OrgRole::Analyst).await?;
        let previous: Option<i32> = model_files::table
            .filter(model_files::model_id.eq(file.model_id))
            .select(diesel::dsl::max(model_files::version_number))
            .first(conn)
            .await?;
        file.version_number = previous.unwrap_or(0) + 1;
        let row: ModelFileRow = diesel::insert_into(model_files::table)
            .values(&file)
            .returning(ModelFileRow::as_returning())
            .get_result(conn)
            .await?;
        Trail::of(caller, model.organization_id)
            .created(conn, "model_file.upload", &row)
            .await?;
        Ok(row)
    })
    .await
}

/// A file's metadata and its content, still in the store.
#[derive(Debug)]
pub struct OpenedFile {
    /// The row.
    pub row: ModelFileRow,
    /// The content, read as it is sent.
    pub content: StoredObject,
}

/// Read a file the caller may see: VIEWER+ of its model's organization, or a superadmin. A file
/// that does not exist, whose model was deleted, or whose organization the caller is not a member
/// of is `NotFound` alike, so the answer never reveals that it exists.
#[tracing::instrument(skip_all, fields(file_id = %file_id))]
pub async fn open(core: &Core, caller: &Caller, file_id: Uuid) -> AppResult<OpenedFile> {
    let row = {
        let mut conn = core.db.conn().await?;
        let found: Option<(ModelFileRow, ModelRow)> = model_files::table
            .inner_join(financial_models::table)
            .filter(model_files::id.eq(file_id))
            .filter(financial_models::deleted_at.is_null())
            .select((ModelFileRow::as_select(), ModelRow::as_select()))
            .first(&mut conn)
            .await
            .optional()?;
        let (row, model) = found.ok_or(AppError::NotFound("file"))?;
        require_role(&mut conn, caller, model.organization_id, OrgRole::Viewer)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) | AppError::Forbidden(_) => AppError::NotFound("file"),
                other => other,
            })?;
        row
    };
    // The connection went back to the pool above: a slow store (or a slow client reading the
    // stream) must not hold it.
    let content = core.files.get(&row.storage_key).await?;
    Ok(OpenedFile { row, content })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_their_last_component() {
        assert_eq!(
            clean_file_name("C:\\fakepath\\plan.xlsx").unwrap(),
            "plan.xlsx"
        );
        assert_eq!(clean_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_file_name(" a\u{0}b.csv ").unwrap(), "ab.csv");
        for bad in ["", "dir/", "..", " \n "] {
            assert!(clean_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(clean_file_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn content_types_are_echoed_only_when_well_formed() {
        assert_eq!(
            clean_content_type(Some("text/csv; charset=utf-8")),
            "text/csv; charset=utf-8"
        );
        for bad in [
            None,
            Some(""),
            Some("csv"),
            Some("text/"),
            Some("a/b\r\nX: y"),
        ] {
            assert_eq!(clean_content_type(bad), DEFAULT_CONTENT_TYPE, "{bad:?}");
        }
    }

    #[test]
    fn sizes_read_like_the_configuration() {
        assert_eq!(human_size(50 * 1024 * 1024), "50 MiB");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
