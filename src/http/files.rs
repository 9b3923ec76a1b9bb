//! `GET /files/{id}`: the content of an uploaded model file, authorized like the model itself.

use super::graphql::reported_response;
use crate::api::errors::codes;
use async_graphql::ID;
use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::graphql::{Peer, caller_of, error_response};
use crate::{
    api::relay::{NodeKind, decode},
    app::App,
    domain::{
        auth::Viewer,
        modelling::files::{self, DEFAULT_CONTENT_TYPE},
        storage::StoredObject,
    },
    error::AppError,
};

/// Characters RFC 5987 allows unencoded in an `ext-value` (`attr-char`).
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

/// `attachment; filename="…"; filename*=UTF-8''…`: the quoted ASCII fallback for old clients,
/// the percent-encoded UTF-8 name (RFC 5987/6266) for every current one.
pub(crate) fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for b in file_name.bytes() {
        if is_attr_char(b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, codes::NOT_FOUND, "file not found")
}

/// `GET /files/{id}` with `Authorization: Bearer <token>`: 401 without a valid token, 404 when
/// the file does not exist or its model is not visible to the caller (the two are
/// indistinguishable on purpose), otherwise the bytes as an attachment, streamed from the store
/// with their `Content-Length`.
pub(crate) async fn download(
    State(app): State<App>,
    Peer(peer): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller_of(&app, &headers, peer).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if caller.viewer == Viewer::Anonymous {
        return unauthenticated();
    }
    // A malformed ID names nothing: the same 404 as an unknown one.
    let Ok(file_id) = decode(&ID(id), NodeKind::ModelFile, "id") else {
        return not_found();
    };
    let opened = match files::open(app.core(), &caller, file_id).await {
        Ok(opened) => opened,
        Err(AppError::NotFound(_)) => return not_found(),
        Err(err) => return reported_response(&err, "downloading a file"),
    };
    let row = &opened.row;
    attachment(
        &row.content_type,
        &row.file_name,
        &row.sha256_hex(),
        opened.content,
    )
}

/// 401 for an anonymous caller, with the `WWW-Authenticate` challenge.
pub(crate) fn unauthenticated() -> Response {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        codes::UNAUTHENTICATED,
        "sign in first: send `Authorization: Bearer <token>`",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// A stored file as a download: its type, name (`Content-Disposition`), length, digest
/// (`ETag`), never cached by a shared cache, never sniffed or rendered with scripts, and
/// streamed from the store.
pub(crate) fn attachment(
    content_type: &str,
    file_name: &str,
    sha256_hex: &str,
    content: StoredObject,
) -> Response {
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
    let disposition = HeaderValue::from_str(&content_disposition(file_name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let etag = HeaderValue::from_str(&format!("\"{sha256_hex}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, HeaderValue::from(content.size)),
            (header::ETAG, etag),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
            // Uploaded content is the user's, not ours: should a browser render it anyway, it
            // runs no script and loads nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        // Streamed: memory holds a chunk at a time, not the file.
        Body::from_stream(content.chunks),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn names_are_rfc_5987_encoded_with_an_ascii_fallback() {
        assert_eq!(
            content_disposition("plan.xlsx"),
            "attachment; filename=\"plan.xlsx\"; filename*=UTF-8''plan.xlsx"
        );
        assert_eq!(
            content_disposition("Prévision 2027 \"v2\".xlsx"),
            "attachment; filename=\"Pr_vision 2027 _v2_.xlsx\"; filename*=UTF-8''Pr%C3%A9vision%202027%20%22v2%22.xlsx"
        );
    }
}
