//! `type ModelFile`.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{FinancialModel, User};
use crate::{
    api::{
        errors::ApiResult,
        relay::{NodeKind, global_id},
    },
    domain::modelling::files::ModelFileRow,
};

/// One uploaded version of a model's file (the workbook the model was built from).
pub struct ModelFile(pub ModelFileRow);

#[Object]
impl ModelFile {
    /// The file version's global ID.
    pub async fn id(&self) -> ID {
        global_id(NodeKind::ModelFile, &[self.0.id])
    }

    /// The model the file belongs to.
    async fn model(&self, ctx: &Context<'_>) -> ApiResult<FinancialModel> {
        FinancialModel::fetch(ctx, self.0.model_id).await
    }

    /// 1 for the first upload to the model, then 2, 3, …
    async fn version_number(&self) -> i32 {
        self.0.version_number
    }

    /// The file's name as uploaded (without any directory part).
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }

    /// MIME type as uploaded; `application/octet-stream` when none (or a malformed one) was sent.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Size in bytes.
    async fn size_bytes(&self) -> i32 {
        // The upload limit keeps files far below 2 GiB; saturate rather than fail if not.
        i32::try_from(self.0.size_bytes).unwrap_or(i32::MAX)
    }

    /// SHA-256 of the content, lowercase hex: compare it with a local copy's digest.
    async fn sha256(&self) -> String {
        self.0.sha256_hex()
    }

    /// Who uploaded it; `null` when that user is no longer visible to you.
    async fn uploaded_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        User::visible(ctx, self.0.uploaded_by).await
    }

    /// Upload time.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Where to download the content: a path on this API (`/files/<id>`), resolved against the
    /// API's origin and fetched with the same `Authorization: Bearer <token>` header as GraphQL.
    async fn download_url(&self) -> String {
        download_path(&self.0)
    }
}

/// `/files/<global id>`: relative, because the server cannot know reliably under which origin
/// (proxy, port, scheme) the client reached it; the client already knows that origin.
pub fn download_path(row: &ModelFileRow) -> String {
    format!("/files/{}", global_id(NodeKind::ModelFile, &[row.id]).0)
}
