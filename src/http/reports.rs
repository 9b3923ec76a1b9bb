//! `GET /reports/{id}`: a READY report's file, authorized and served like `/files/{id}`.

use async_graphql::ID;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    files::{attachment, unauthenticated},
    graphql::{Peer, caller_of, error_response, reported_response},
};
use crate::{
    api::{
        errors::codes,
        relay::{NodeKind, decode},
    },
    app::App,
    domain::{auth::Viewer, reports::service},
    error::AppError,
};

fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, codes::NOT_FOUND, "report not found")
}

/// `GET /reports/{id}` with `Authorization: Bearer <token>`: 401 without a valid token, 404 when
/// the report does not exist or its model is not visible to the caller (indistinguishable on
/// purpose), 409 `CONFLICT` while it is PENDING or when it FAILED, otherwise the file as an
/// attachment named `<report name>.csv` or `.xlsx`, streamed from the store.
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
    let Ok(report_id) = decode(&ID(id), NodeKind::Report, "id") else {
        return not_found();
    };
    match service::open(app.core(), &caller, report_id).await {
        Ok(opened) => {
            let row = &opened.row;
            attachment(
                row.format.content_type(),
                &row.file_name(),
                &row.sha256_hex().unwrap_or_default(),
                opened.content,
            )
        }
        Err(AppError::NotFound(_)) => not_found(),
        Err(err) => reported_response(&err, "downloading a report"),
    }
}
