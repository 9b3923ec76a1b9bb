//! The wire format of both protocols: which one the client offered, the messages sent back, and
//! the pieces read from a client's messages.

use async_graphql::{Response as GqlResponse, ServerError};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::api::error_codes::ensure_code;

/// The two protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// `graphql-transport-ws` (the `graphql-ws` npm package).
    TransportWs,
    /// Legacy `graphql-ws` (subscriptions-transport-ws).
    LegacyWs,
}

impl Protocol {
    pub(super) fn from_headers(headers: &HeaderMap) -> Self {
        let offered = headers
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim);
        let mut legacy = false;
        for protocol in offered {
            match protocol {
                "graphql-transport-ws" => return Protocol::TransportWs,
                "graphql-ws" => legacy = true,
                _ => {}
            }
        }
        if legacy {
            Protocol::LegacyWs
        } else {
            Protocol::TransportWs
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// What the connection's writer sends.
pub(super) enum Outgoing {
    Json(Value),
    Close(u16, String),
}

/// The `authorization` entry of a `connection_init` payload, whatever its case.
pub(super) fn authorization(payload: &Value) -> Option<String> {
    payload
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str().map(str::to_owned))
}

/// Whether a read failed because the client sent more than the message or frame limit.
pub(super) fn too_big(err: &axum::Error) -> bool {
    // tungstenite's capacity errors ("Space limit exceeded: Message too long …"); axum does not
    // re-export its error type.
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

/// The `error` message of operation `id` (a request that never executed): the errors as the
/// payload, wrapped in `{"errors": …}` for the legacy protocol.
pub(super) fn error_message(id: &str, errors: &[ServerError], legacy: bool) -> Value {
    let errors = serde_json::to_value(errors).unwrap_or(Value::Null);
    let payload = if legacy {
        json!({"errors": errors})
    } else {
        errors
    };
    json!({"type": "error", "id": id, "payload": payload})
}

/// An error with `code`, for refusals decided here rather than by the schema.
pub(super) fn coded_error(code: &str, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// `next`/`data` for a result, or `error` for a request that failed before executing (parse,
/// validation: no data at all on the first response).
pub(super) fn operation_message(
    id: &str,
    mut response: GqlResponse,
    first: bool,
    legacy: bool,
) -> Value {
    // Streams bypass the request-level extension hook: give their errors codes here.
    response.errors.iter_mut().for_each(ensure_code);
    // Only a request that never executed (parse, validation, limits: errors without a path) is
    // an `error` message; an execution error, even one that nulls `data`, is a result.
    let failed_outright = first
        && response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if failed_outright {
        return error_message(id, &response.errors, legacy);
    }
    let payload = serde_json::to_value(&response).unwrap_or(Value::Null);
    json!({"type": if legacy { "data" } else { "next" }, "id": id, "payload": payload})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_key_is_case_insensitive() {
        assert_eq!(
            authorization(&json!({"Authorization": "Bearer x"})).as_deref(),
            Some("Bearer x")
        );
        assert_eq!(
            authorization(&json!({"authorization": "Bearer y"})).as_deref(),
            Some("Bearer y")
        );
        assert_eq!(authorization(&json!({})), None);
        assert_eq!(authorization(&json!(null)), None);
    }

    #[test]
    fn protocol_negotiation_prefers_the_current_protocol() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "sec-websocket-protocol",
            "graphql-ws, graphql-transport-ws".parse().unwrap(),
        );
        assert_eq!(Protocol::from_headers(&headers), Protocol::TransportWs);
        headers.insert("sec-websocket-protocol", "graphql-ws".parse().unwrap());
        assert_eq!(Protocol::from_headers(&headers), Protocol::LegacyWs);
    }
}
