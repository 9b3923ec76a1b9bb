//! `/graphql/ws`: the `graphql-transport-ws` protocol (and the legacy `graphql-ws` one of
//! subscriptions-transport-ws), implemented here rather than with async-graphql's handler because
//! that one leaves out the protocol's close codes: 4408 when no `connection_init` arrives in time,
//! 4401 for a subscribe before the ack, 4409 for a duplicate operation id, 4403 for a refused
//! token, 4429 for a second init, 4400 for an invalid message.
//!
//! The token travels in the `connection_init` payload (`{"authorization": "Bearer …"}`, the key
//! matched case-insensitively: GraphiQL sends its headers pane verbatim). Every operation gets its
//! own request data and DataLoader, like an HTTP request.

use std::{collections::HashMap, time::Duration};

use async_graphql::{Request as GqlRequest, Response as GqlResponse};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::HeaderMap,
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::AbortHandle};

use super::graphql::{Peer, authenticate, request_meta};
use crate::{
    api::{context::request_data, error_codes::ensure_code},
    app::App,
    domain::auth::{Caller, RequestMeta},
};

/// Messages buffered for one connection before its subscriptions wait for the client.
const OUTBOX: usize = 256;
/// A client that reads nothing for this long while messages wait is disconnected (1013).
const SLOW_CLIENT: Duration = Duration::from_secs(20);
/// Keep-alive interval of the legacy protocol.
const LEGACY_KEEPALIVE: Duration = Duration::from_secs(15);

/// The two protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `graphql-transport-ws` (the `graphql-ws` npm package).
    TransportWs,
    /// Legacy `graphql-ws` (subscriptions-transport-ws).
    LegacyWs,
}

impl Protocol {
    fn from_headers(headers: &HeaderMap) -> Self {
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

    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// What the connection's writer sends.
enum Outgoing {
    Json(Value),
    Close(u16, String),
}

/// The `authorization` entry of a `connection_init` payload, whatever its case.
fn authorization(payload: &Value) -> Option<String> {
    payload
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str().map(str::to_owned))
}

/// Upgrade to a GraphQL WebSocket.
pub(crate) async fn graphql_ws(
    State(app): State<App>,
    Peer(peer): Peer,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let meta = request_meta(&headers, peer, &app.config().trusted_proxies);
    let protocol = Protocol::from_headers(&headers);
    upgrade
        .protocols([protocol.name()])
        .on_upgrade(move |socket| {
            Connection {
                app,
                meta,
                protocol,
            }
            .run(socket)
        })
}

struct Connection {
    app: App,
    meta: RequestMeta,
    protocol: Protocol,
}

/// The loop's verdict on one client message.
enum Step {
    Continue,
    Close(u16, String),
}

impl Connection {
    async fn run(self, socket: WebSocket) {
        let (mut sink, mut incoming) = socket.split();
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(OUTBOX);
        let writer = tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                let (frame, last) = match message {
                    Outgoing::Json(value) => (Message::Text(value.to_string().into()), false),
                    Outgoing::Close(code, reason) => (
                        Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })),
                        true,
                    ),
                };
                if sink.send(frame).await.is_err() || last {
                    break;
                }
            }
            let _ = sink.close().await;
        });

        let mut caller: Option<Caller> = None;
        let mut subscriptions: HashMap<String, AbortHandle> = HashMap::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let (slow_tx, mut slow_rx) = mpsc::unbounded_channel::<()>();
        let init_deadline =
            tokio::time::sleep(Duration::from_secs(self.app.config().ws_init_timeout_secs));
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(LEGACY_KEEPALIVE);

        let close = loop {
            tokio::select! {
                () = &mut init_deadline, if caller.is_none() => {
                    break Some((4408, "Connection initialisation timeout".to_owned()));
                }
                Some(id) = done_rx.recv() => {
                    subscriptions.remove(&id);
                }
                Some(()) = slow_rx.recv() => {
                    break Some((1013, "the client reads too slowly".to_owned()));
                }
                _ = keepalive.tick(), if self.protocol == Protocol::LegacyWs && caller.is_some() => {
                    let _ = out_tx.send(Outgoing::Json(json!({"type": "ka"}))).await;
                }
                message = incoming.next() => {
                    let text = match message {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => break Some((4400, "binary messages are not part of the protocol".to_owned())),
                        Some(Ok(_)) => continue,
                    };
                    let step = self
                        .handle(text.as_str(), &mut caller, &mut subscriptions, &out_tx, &done_tx, &slow_tx)
                        .await;
                    if let Step::Close(code, reason) = step {
                        break Some((code, reason));
                    }
                }
            }
        };
        for (_, handle) in subscriptions.drain() {
            handle.abort();
        }
        if let Some((code, reason)) = close {
            let _ = out_tx.send(Outgoing::Close(code, reason)).await;
        }
        drop(out_tx);
        let _ = writer.await;
    }

    async fn handle(
        &self,
        text: &str,
        caller: &mut Option<Caller>,
        subscriptions: &mut HashMap<String, AbortHandle>,
        out: &mpsc::Sender<Outgoing>,
        done: &mpsc::UnboundedSender<String>,
        slow: &mpsc::UnboundedSender<()>,
    ) -> Step {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Step::Close(4400, "Invalid message received".into());
        };
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let payload = message.get("payload").cloned().unwrap_or(Value::Null);
        let legacy = self.protocol == Protocol::LegacyWs;
        match kind {
            "connection_init" => {
                if caller.is_some() {
                    return Step::Close(4429, "Too many initialisation requests".into());
                }
                match authenticate(&self.app, authorization(&payload).as_deref()).await {
                    Ok(viewer) => {
                        *caller = Some(Caller {
                            viewer,
                            meta: self.meta.clone(),
                        });
                        let _ = out
                            .send(Outgoing::Json(json!({"type": "connection_ack"})))
                            .await;
                        Step::Continue
                    }
                    Err(error) => {
                        if legacy {
                            let _ = out.send(Outgoing::Json(json!({"type": "connection_error", "payload": {"message": error.to_string()}}))).await;
                        }
                        Step::Close(4403, "Forbidden".into())
                    }
                }
            }
            "ping" if !legacy => {
                let _ = out
                    .send(Outgoing::Json(json!({"type": "pong", "payload": payload})))
                    .await;
                Step::Continue
            }
            "pong" if !legacy => Step::Continue,
            "subscribe" | "start" if (kind == "start") == legacy => {
                let Some(caller) = caller.as_ref() else {
                    return Step::Close(4401, "Unauthorized".into());
                };
                let Some(id) = id else {
                    return Step::Close(
                        4400,
                        "Invalid message received: an operation needs an id".into(),
                    );
                };
                if subscriptions.get(&id).is_some_and(|h| !h.is_finished()) {
                    return Step::Close(4409, format!("Subscriber for {id} already exists"));
                }
                let Ok(request) = serde_json::from_value::<GqlRequest>(payload) else {
                    return Step::Close(
                        4400,
                        "Invalid message received: the payload is not a GraphQL request".into(),
                    );
                };
                let handle = self.spawn_operation(
                    id.clone(),
                    request,
                    caller.clone(),
                    out.clone(),
                    done.clone(),
                    slow.clone(),
                );
                subscriptions.insert(id, handle);
                Step::Continue
            }
            "complete" | "stop" if (kind == "stop") == legacy => {
                if let Some(handle) = id.and_then(|id| subscriptions.remove(&id)) {
                    handle.abort();
                }
                Step::Continue
            }
            "connection_terminate" if legacy => Step::Close(1000, "terminated".into()),
            _ => Step::Close(
                4400,
                format!("Invalid message received: unexpected type {kind:?}"),
            ),
        }
    }

    /// Run one operation to completion in its own task, streaming its results.
    fn spawn_operation(
        &self,
        id: String,
        request: GqlRequest,
        caller: Caller,
        out: mpsc::Sender<Outgoing>,
        done: mpsc::UnboundedSender<String>,
        slow: mpsc::UnboundedSender<()>,
    ) -> AbortHandle {
        let schema = self.app.schema().clone();
        let (state, loader) = request_data(self.app.core(), caller, None);
        let request = request.data(state).data(loader);
        let legacy = self.protocol == Protocol::LegacyWs;
        let send = move |value: Value| {
            let out = out.clone();
            let slow = slow.clone();
            async move {
                match tokio::time::timeout(SLOW_CLIENT, out.send(Outgoing::Json(value))).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => false,
                    Err(_) => {
                        let _ = slow.send(());
                        false
                    }
                }
            }
        };
        tokio::spawn(async move {
            let mut stream = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = stream.next().await {
                let message = operation_message(&id, response, first, legacy);
                first = false;
                let is_error = message["type"] == "error";
                if !send(message).await {
                    return;
                }
                if is_error {
                    let _ = done.send(id);
                    return;
                }
            }
            send(json!({"type": "complete", "id": id})).await;
            let _ = done.send(id);
        })
        .abort_handle()
    }
}

/// `next`/`data` for a result, or `error` for a request that failed before executing (parse,
/// validation: no data at all on the first response).
fn operation_message(id: &str, mut response: GqlResponse, first: bool, legacy: bool) -> Value {
    // Streams bypass the request-level extension hook: give their errors codes here.
    response.errors.iter_mut().for_each(ensure_code);
    let failed_outright =
        first && response.data == async_graphql::Value::Null && !response.errors.is_empty();
    if failed_outright {
        let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
        let payload = if legacy {
            json!({"errors": errors})
        } else {
            errors
        };
        return json!({"type": "error", "id": id, "payload": payload});
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
