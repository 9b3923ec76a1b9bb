//! `/graphql/ws`: graphql-transport-ws and the legacy graphql-ws protocol. The token travels in
//! the `connection_init` payload (`{"authorization": "Bearer …"}`, key matched case-insensitively,
//! since GraphiQL sends its headers pane verbatim).

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{State, WebSocketUpgrade},
    http::HeaderMap,
    response::Response,
};

use super::graphql::{Peer, authenticate, request_meta};
use crate::{api::context::request_data, app::App, domain::auth::Caller};

/// The `authorization` entry of a `connection_init` payload, whatever its case.
fn authorization(payload: &serde_json::Value) -> Option<String> {
    payload
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str().map(str::to_owned))
}

/// Upgrade to a GraphQL WebSocket.
pub(crate) async fn graphql_ws(
    State(app): State<App>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    let meta = request_meta(&headers, peer);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let schema = app.schema().clone();
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let viewer = authenticate(&app, authorization(&payload).as_deref())
                        .await
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    let (state, loader) = request_data(app.core(), Caller { viewer, meta }, None);
                    let mut data = Data::default();
                    data.insert(state);
                    data.insert(loader);
                    Ok(data)
                })
                .serve()
        })
}

#[cfg(test)]
mod tests {
    use super::authorization;
    use serde_json::json;

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
}
