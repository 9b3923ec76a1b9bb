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

use async_graphql::Request as GqlRequest;
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

mod protocol;

use protocol::{
    Outgoing, Protocol, authorization, coded_error, error_message, operation_message, too_big,
};

use super::{
    graphql::{Peer, authenticate, request_meta},
    guard::guard_request,
};
use crate::{
    api::{AppSchema, context::request_data, error_codes::ensure_code, errors::codes},
    app::App,
    domain::{
        Route,
        auth::{Caller, RequestMeta},
    },
    error::AppError,
};

/// Messages buffered for one connection before its subscriptions wait for the client.
const OUTBOX: usize = 256;
/// A client that reads nothing for this long while messages wait is disconnected (1013).
const SLOW_CLIENT: Duration = Duration::from_secs(20);
/// Keep-alive interval of the legacy protocol.
const LEGACY_KEEPALIVE: Duration = Duration::from_secs(15);

/// Upgrade to a GraphQL WebSocket.
pub(crate) async fn graphql_ws(
    State(app): State<App>,
    Peer(peer): Peer,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let meta = request_meta(&headers, peer, &app.config().trusted_proxies);
    let protocol = Protocol::from_headers(&headers);
    // The frame limit refuses an oversized frame from its header, before its payload is read.
    let max_message = app.config().ws_max_message_bytes;
    upgrade
        .max_message_size(max_message)
        .max_frame_size(max_message)
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

/// What `connection_init` established: the caller, and the credential to check again.
#[derive(Default)]
struct Session {
    caller: Option<Caller>,
    /// The `authorization` value as sent; kept only in memory, for re-validation.
    credential: Option<String>,
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

        let mut session = Session::default();
        let mut subscriptions: HashMap<String, AbortHandle> = HashMap::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, bool)>();
        let (slow_tx, mut slow_rx) = mpsc::unbounded_channel::<()>();
        let init_deadline =
            tokio::time::sleep(Duration::from_secs(self.app.config().ws_init_timeout_secs));
        tokio::pin!(init_deadline);
        let mut keepalive = tokio::time::interval(LEGACY_KEEPALIVE);
        let revalidate_every = Duration::from_secs(self.app.config().ws_revalidate_secs.max(1));
        let mut revalidate = tokio::time::interval_at(
            tokio::time::Instant::now() + revalidate_every,
            revalidate_every,
        );

        let close = loop {
            tokio::select! {
                () = &mut init_deadline, if session.caller.is_none() => {
                    break Some((4408, "Connection initialisation timeout".to_owned()));
                }
                Some((id, failed)) = done_rx.recv() => {
                    subscriptions.remove(&id);
                    // An operation that failed may have failed for its credential (the audit
                    // stream re-checks rights on its own): the socket must not stay open on it.
                    if failed && let Err(close) = self.revalidate(&mut session).await {
                        break Some(close);
                    }
                }
                Some(()) = slow_rx.recv() => {
                    break Some((1013, "the client reads too slowly".to_owned()));
                }
                _ = keepalive.tick(), if self.protocol == Protocol::LegacyWs && session.caller.is_some() => {
                    let _ = out_tx.send(Outgoing::Json(json!({"type": "ka"}))).await;
                }
                // A running subscription must not outlive its credential (logout, expiry,
                // revocation, a superadmin flag taken away).
                _ = revalidate.tick(), if !subscriptions.is_empty() => {
                    if let Err(close) = self.revalidate(&mut session).await {
                        break Some(close);
                    }
                }
                message = incoming.next() => {
                    let text = match message {
                        Some(Err(err)) if too_big(&err) => break Some((1009, format!(
                            "a message may be at most {} bytes",
                            self.app.config().ws_max_message_bytes
                        ))),
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => break Some((4400, "binary messages are not part of the protocol".to_owned())),
                        Some(Ok(_)) => continue,
                    };
                    let step = self
                        .handle(text.as_str(), &mut session, &mut subscriptions, &out_tx, &done_tx, &slow_tx)
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
        session: &mut Session,
        subscriptions: &mut HashMap<String, AbortHandle>,
        out: &mpsc::Sender<Outgoing>,
        done: &mpsc::UnboundedSender<(String, bool)>,
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
                if session.caller.is_some() {
                    return Step::Close(4429, "Too many initialisation requests".into());
                }
                let credential = authorization(&payload);
                match authenticate(&self.app, credential.as_deref()).await {
                    Ok(viewer) => {
                        session.caller = Some(Caller {
                            viewer,
                            meta: self.meta.clone(),
                        });
                        session.credential = credential;
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
                if session.caller.is_none() {
                    return Step::Close(4401, "Unauthorized".into());
                }
                let Some(id) = id else {
                    return Step::Close(
                        4400,
                        "Invalid message received: an operation needs an id".into(),
                    );
                };
                if subscriptions.get(&id).is_some_and(|h| !h.is_finished()) {
                    return Step::Close(4409, format!("Subscriber for {id} already exists"));
                }
                let Ok(mut request) = serde_json::from_value::<GqlRequest>(payload) else {
                    return Step::Close(
                        4400,
                        "Invalid message received: the payload is not a GraphQL request".into(),
                    );
                };
                // The same guard as HTTP, before anything else is spent on the operation.
                let introspection_only = match guard_request(&self.app, &mut request) {
                    Ok(shape) => shape.is_some_and(|s| s.introspection_only),
                    Err(mut error) => {
                        ensure_code(&mut error);
                        let _ = out
                            .send(Outgoing::Json(error_message(&id, &[error], legacy)))
                            .await;
                        return Step::Continue;
                    }
                };
                let running = subscriptions.values().filter(|h| !h.is_finished()).count();
                if running >= self.app.config().ws_max_operations {
                    let message = format!(
                        "too many operations in flight on this connection: at most {}",
                        self.app.config().ws_max_operations
                    );
                    let error = coded_error(codes::RATE_LIMITED, message);
                    let _ = out
                        .send(Outgoing::Json(error_message(&id, &[error], legacy)))
                        .await;
                    return Step::Continue;
                }
                // Every operation runs with the credential as it stands now, not as it stood at
                // `connection_init`.
                let caller = match self.revalidate(session).await {
                    Ok(caller) => caller,
                    Err((code, reason)) => return Step::Close(code, reason),
                };
                let (schema, request) = self.prepare(request, introspection_only, caller);
                let handle = self.spawn_operation(
                    id.clone(),
                    schema,
                    request,
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

    /// Check the connection's credential again and return the caller as it stands now. A logged
    /// out, expired or revoked credential, or a superadmin flag taken away, closes the socket
    /// with 4403. When the database cannot answer, the last known caller stands: the operation
    /// then fails on its own, and the next check decides.
    async fn revalidate(&self, session: &mut Session) -> Result<Caller, (u16, String)> {
        let Some(current) = session.caller.clone() else {
            return Err((4401, "Unauthorized".into()));
        };
        if current.viewer.is_anonymous() {
            return Ok(current);
        }
        match authenticate(&self.app, session.credential.as_deref()).await {
            Ok(viewer) => {
                let same_principal = viewer.user_id() == current.viewer.user_id()
                    && viewer.api_key_id() == current.viewer.api_key_id();
                let lost_superadmin = current.viewer.is_superadmin() && !viewer.is_superadmin();
                if !same_principal || lost_superadmin {
                    return Err((4403, "Forbidden: the credential's rights changed".into()));
                }
                let caller = Caller {
                    viewer,
                    meta: current.meta,
                };
                session.caller = Some(caller.clone());
                Ok(caller)
            }
            Err(AppError::Unauthenticated(_)) => Err((
                4403,
                "Forbidden: the session or API key is no longer valid".into(),
            )),
            Err(err) => {
                tracing::warn!(error = %err, "WebSocket credential check skipped");
                Ok(current)
            }
        }
    }

    /// An operation's own request data (caller, DataLoader, evaluation budget) and the schema it
    /// runs on: introspection-only operations run where HTTP runs them (their own depth and cost
    /// caps).
    fn prepare(
        &self,
        request: GqlRequest,
        introspection_only: bool,
        caller: Caller,
    ) -> (AppSchema, GqlRequest) {
        let budget = self.app.core().eval_budget();
        // Over a WebSocket everything reads the primary: subscriptions' catch-up must, and its
        // queries are few. Its writes still count for the caller's HTTP reads that follow.
        let route = Route {
            credential: caller.viewer.writer_id(),
            ..Route::default()
        };
        let (state, loader) = request_data(self.app.core(), caller, None, budget, true, route);
        let request = request.data(state).data(loader);
        match &self.app.inner.introspection_schema {
            Some(schema) if introspection_only => (schema.clone(), request.only_introspection()),
            _ => (self.app.schema().clone(), request),
        }
    }

    /// Run one operation to completion in its own task, streaming its results.
    fn spawn_operation(
        &self,
        id: String,
        schema: AppSchema,
        request: GqlRequest,
        out: mpsc::Sender<Outgoing>,
        done: mpsc::UnboundedSender<(String, bool)>,
        slow: mpsc::UnboundedSender<()>,
    ) -> AbortHandle {
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
            let mut failed = false;
            while let Some(response) = stream.next().await {
                failed |= !response.errors.is_empty();
                let message = operation_message(&id, response, first, legacy);
                first = false;
                let is_error = message["type"] == "error";
                if !send(message).await {
                    return;
                }
                if is_error {
                    let _ = done.send((id, true));
                    return;
                }
            }
            send(json!({"type": "complete", "id": id})).await;
            let _ = done.send((id, failed));
        })
        .abort_handle()
    }
}
