//! GraphQL multipart requests (uploads, `uploadModelFile`), read here rather than by
//! async-graphql-axum for two bounds its reader lacks:
//!
//! * an anonymous caller is refused (401) before a byte of the body is read: nobody may make the
//!   server spool FV_MAX_UPLOAD_BYTES before saying who they are;
//! * a request carries exactly one file. async-graphql's `MultipartOptions::max_num_files` only
//!   sizes its stream limit and counts nothing, so a second file part is refused here as soon as
//!   its headers arrive, before any of it is spooled.
//!
//! The spec's parts: `operations` (the JSON request or batch), `map` (file part name → the
//! variable paths it fills), then the file. Other non-file parts are skipped unread.

use super::graphql::reported_response;
use crate::api::errors::codes;
use crate::error::AppError;
use std::collections::HashMap;

use async_graphql::{BatchRequest, UploadValue};
use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::graphql::error_response;
use crate::{
    app::App,
    domain::auth::{Caller, Viewer},
};

/// The one file of a request, spooled to an anonymous temporary file.
struct SpooledFile {
    part: String,
    upload: UploadValue,
}

/// Why a multipart request is refused; answered once, in [`receive`].
enum Refusal {
    /// A malformed request, or one carrying more than one file: 400 `BAD_USER_INPUT`.
    Invalid(&'static str),
    /// Over the body limit (`http::body_limit` cuts the stream; multer enforces the per-part
    /// limits): 413.
    TooLarge,
    /// Spooling failed on our side.
    Io(std::io::Error),
}

impl From<multer::Error> for Refusal {
    fn from(err: multer::Error) -> Self {
        match err {
            multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
                Refusal::TooLarge
            }
            multer::Error::StreamReadFailed(cause)
                if cause.to_string().contains("length limit") =>
            {
                Refusal::TooLarge
            }
            _ => Refusal::Invalid("the request body is not a valid GraphQL multipart request"),
        }
    }
}

impl From<std::io::Error> for Refusal {
    fn from(err: std::io::Error) -> Self {
        Refusal::Io(err)
    }
}

impl Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Invalid(message) => {
                error_response(StatusCode::BAD_REQUEST, codes::BAD_USER_INPUT, message)
            }
            Refusal::TooLarge => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::BAD_USER_INPUT,
                "the request body is too large",
            ),
            Refusal::Io(err) => reported_response(&AppError::internal(err), "spooling an upload"),
        }
    }
}

/// Write one file part to a temporary file, chunk by chunk (the body limit bounds its size).
async fn spool(field: &mut multer::Field<'_>) -> Result<std::fs::File, Refusal> {
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(std::io::Error::other)??;
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = field.chunk().await? {
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.rewind().await?;
    Ok(file.into_std().await)
}

/// The one mapping a request may carry: `{"<part>": ["<path>"]}`.
fn single_mapping(map: &HashMap<String, Vec<String>>) -> Result<(String, String), Refusal> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((part, paths)), None) if paths.len() == 1 => Ok((part.clone(), paths[0].clone())),
        _ => Err(Refusal::Invalid(
            "a multipart request carries exactly one file, used once: `map` must be {\"0\": [\"variables.input.file\"]}",
        )),
    }
}

/// Put the file where `path` says (`variables.…`, or `<index>.variables.…` in a batch).
fn place(batch: &mut BatchRequest, path: &str, upload: UploadValue) -> Result<(), Refusal> {
    match batch {
        BatchRequest::Single(request) => request.set_upload(path, upload),
        BatchRequest::Batch(requests) => {
            let target = path
                .split_once('.')
                .and_then(|(index, rest)| Some((index.parse::<usize>().ok()?, rest)))
                .and_then(|(index, rest)| Some((requests.get_mut(index)?, rest)));
            let Some((request, rest)) = target else {
                return Err(Refusal::Invalid(
                    "`map` names an operation the batch does not have",
                ));
            };
            request.set_upload(rest, upload);
        }
    }
    Ok(())
}

/// Read an upload request for `caller`: 401 for anonymous callers without touching the body,
/// else the operations with their one file in place.
pub(crate) async fn receive(
    app: &App,
    caller: &Caller,
    request: Request,
) -> Result<BatchRequest, Response> {
    if caller.viewer == Viewer::Anonymous {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHENTICATED,
            "sign in first: uploads need `Authorization: Bearer <token>`",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(response);
    }
    read(app, request).await.map_err(Refusal::into_response)
}

/// Read the parts of an authenticated caller's upload request.
async fn read(app: &App, request: Request) -> Result<BatchRequest, Refusal> {
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(Refusal::Invalid("a multipart request needs a boundary"))?;
    // `operations` and `map` are JSON like any other request: bounded like one.
    let json_limit = u64::try_from(app.config().max_body_bytes).unwrap_or(u64::MAX);
    let limits = multer::SizeLimit::new()
        .for_field("operations", json_limit)
        .for_field("map", json_limit);
    let mut multipart = multer::Multipart::with_constraints(
        request.into_body().into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );

    let (mut operations, mut map, mut file) = (None, None, None::<SpooledFile>);
    while let Some(mut field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(file_name) = field.file_name().map(str::to_owned) {
            if file.is_some() {
                return Err(Refusal::Invalid(
                    "a multipart request carries exactly one file",
                ));
            }
            let content_type = field.content_type().map(ToString::to_string);
            let content = spool(&mut field).await?;
            file = Some(SpooledFile {
                part: name,
                upload: UploadValue {
                    filename: file_name,
                    content_type,
                    content,
                },
            });
        } else if name == "operations" {
            let bytes = field.bytes().await?;
            operations = Some(
                super::graphql::parse_batch(&bytes)
                    .map_err(|_| Refusal::Invalid("`operations` is not a GraphQL request"))?,
            );
        } else if name == "map" {
            let bytes = field.bytes().await?;
            let parsed: HashMap<String, Vec<String>> = serde_json::from_slice(&bytes)
                .map_err(|_| Refusal::Invalid("`map` is not a JSON object of string arrays"))?;
            // Known before the file part arrives (the spec orders them): refuse before spooling.
            single_mapping(&parsed)?;
            map = Some(parsed);
        }
    }

    let mut batch = operations.ok_or(Refusal::Invalid("the `operations` part is missing"))?;
    let map = map.ok_or(Refusal::Invalid("the `map` part is missing"))?;
    let (part, path) = single_mapping(&map)?;
    let file = file
        .filter(|f| f.part == part)
        .ok_or(Refusal::Invalid("the file part named in `map` is missing"))?;
    place(&mut batch, &path, file.upload)?;
    Ok(batch)
}
