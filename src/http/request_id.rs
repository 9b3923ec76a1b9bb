//! Client-sent request ids are kept only when short and printable: the id is logged, echoed and
//! written to the audit log, so an unbounded or binary one would travel everywhere. Anything
//! else is dropped here, before `SetRequestIdLayer` (which only fills a missing id) mints a
//! fresh one.

use axum::{extract::Request, middleware::Next, response::Response};

use super::REQUEST_ID;
use crate::domain::limits::MAX_REQUEST_ID_LEN;

/// Whether a client's request id may be kept: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
/// characters (no spaces or controls).
fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.iter().all(u8::is_ascii_graphic)
}

/// Remove an unacceptable `x-request-id` (and any repeated one: an id names one request).
pub(crate) async fn sanitize(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let values = headers.get_all(REQUEST_ID).iter().count();
    let keep = values == 1
        && headers
            .get(REQUEST_ID)
            .is_some_and(|v| acceptable(v.as_bytes()));
    if values > 0 && !keep {
        headers.remove(REQUEST_ID);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(acceptable(b"req-123_ABC.x"));
        assert!(acceptable("a".repeat(128).as_bytes()));
        assert!(!acceptable("a".repeat(129).as_bytes()));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"has space"));
        assert!(!acceptable(b"tab\there"));
        assert!(!acceptable("caf\u{e9}".as_bytes()));
    }
}
