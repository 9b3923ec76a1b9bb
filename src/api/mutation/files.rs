//! Model file mutations.

use std::io::Read;

use async_graphql::{Context, ID, InputObject, Object, Upload};

use crate::{
    api::{
        context::state,
        errors::{ApiResult, IntoApi},
        guards::Authenticated,
        relay::{NodeKind, decode},
        types::ModelFile,
    },
    domain::modelling::files,
    error::AppError,
};

/// A new version of a model's file.
#[derive(InputObject)]
pub struct UploadModelFileInput {
    /// The model.
    pub model_id: ID,
    /// The file: a part of a GraphQL multipart request (send the `apollo-require-preflight` or
    /// `x-fv-preflight` header with it).
    pub file: Upload,
}

#[derive(Default)]
pub struct ModelFileMutation;

#[Object]
impl ModelFileMutation {
    /// Upload a new version of a model's file (ANALYST+): versions count 1, 2, … per model.
    /// A file over the size limit is `BAD_USER_INPUT` on `input.file`.
    #[graphql(guard = "Authenticated")]
    async fn upload_model_file(
        &self,
        ctx: &Context<'_>,
        input: UploadModelFileInput,
    ) -> ApiResult<ModelFile> {
        let st = state(ctx);
        let model = decode(&input.model_id, NodeKind::FinancialModel, "input.modelId")?;
        let upload = input.file.value(ctx).map_err(|_| {
            AppError::bad_input("input.file", "the upload is missing or unreadable")
        })?;
        let file_name = upload.filename.clone();
        let content_type = upload.content_type.clone();
        // async-graphql spooled the part to a temporary file: read it without blocking the
        // workers. The HTTP body limit already bounds its size.
        let bytes = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            upload.into_read().read_to_end(&mut buf).map(|_| buf)
        })
        .await
        .map_err(AppError::internal)
        .and_then(|read| read.map_err(AppError::internal))
        .api()?;
        let row = files::upload(
            &st.core,
            &st.caller(),
            model,
            &file_name,
            content_type.as_deref(),
            bytes.into(),
        )
        .await
        .api()?;
        Ok(ModelFile(row))
    }
}
