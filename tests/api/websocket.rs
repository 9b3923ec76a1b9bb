//! `/graphql/ws`: both protocols, authentication in `connection_init`, and the
//! graphql-transport-ws close codes.

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue as WsHeaderValue,
};

use crate::helpers::TestApp;

/// Serve the router on a real port; returns its address.
pub async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(addr: SocketAddr) -> Ws {
    ws_connect_with(addr, "graphql-transport-ws").await
}

/// Connect offering `protocol`.
pub async fn ws_connect_with(addr: SocketAddr, protocol: &'static str) -> Ws {
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .expect("ws request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        WsHeaderValue::from_static(protocol),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    ws
}

/// The next message within five seconds (`None` when the stream ended).
pub async fn next_message(ws: &mut Ws) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message within 5 s")
        .map(|m| m.expect("websocket error"))
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match next_message(ws).await.expect("a message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Send a JSON message.
pub async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The close code the server ends the connection with (skipping other messages).
pub async fn close_code(ws: &mut Ws) -> (u16, String) {
    loop {
        match next_message(ws).await {
            Some(Message::Close(frame)) => {
                let frame = frame.expect("a close frame with a code");
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Message::Text(text)) => {
                assert!(!text.as_str().contains("connection_ack"), "{text}")
            }
            Some(_) => continue,
            None => panic!("closed without a close frame"),
        }
    }
}

#[tokio::test]
async fn queries_run_over_graphql_transport_ws_after_the_ack() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let addr = serve(&app).await;

    let mut ws = ws_connect(addr).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", ann.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { email } }"}}),
    )
    .await;
    let next = next_json(&mut ws).await;
    assert_eq!(next["type"], "next", "{next:#}");
    assert_eq!(next["id"], "1");
    assert_eq!(next["payload"]["data"]["me"]["email"], ann.email.as_str());
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "complete", "id": "1"})
    );
    // A request that fails validation is an `error` message, not a `next`.
    send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ nope }"}}),
    )
    .await;
    let error = next_json(&mut ws).await;
    assert_eq!(
        (error["type"].as_str(), error["id"].as_str()),
        (Some("error"), Some("2")),
        "{error:#}"
    );
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    ws.close(None).await.ok();

    // The lower-case key of the contract works as well.
    let mut ws = ws_connect(addr).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", ann.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
}

#[tokio::test]
async fn protocol_violations_get_their_close_codes() {
    let app = TestApp::spawn_with(|c| c.ws_init_timeout_secs = 1).await;
    let ann = app.user("ann").await;
    let addr = serve(&app).await;
    let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", ann.token)}});

    // No connection_init in time.
    let mut ws = ws_connect(addr).await;
    assert_eq!(close_code(&mut ws).await.0, 4408);
    // A forged token.
    let mut ws = ws_connect(addr).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer fvs_forged"}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, (4403, "Forbidden".to_owned()));
    // Subscribe before the ack.
    let mut ws = ws_connect(addr).await;
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await.0, 4401);
    // A second init.
    let mut ws = ws_connect(addr).await;
    send(&mut ws, init.clone()).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    send(&mut ws, init.clone()).await;
    assert_eq!(close_code(&mut ws).await.0, 4429);
    // Not JSON, or an unknown type.
    let mut ws = ws_connect(addr).await;
    ws.send(Message::text("{nope")).await.unwrap();
    assert_eq!(close_code(&mut ws).await.0, 4400);
    let mut ws = ws_connect(addr).await;
    send(
        &mut ws,
        json!({"type": "start", "id": "1", "payload": {"query": "{ me { id } }"}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await.0, 4400);
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let addr = serve(&app).await;
    let mut ws = ws_connect_with(addr, "graphql-ws").await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", ann.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    send(
        &mut ws,
        json!({"id": "a", "type": "start", "payload": {"query": "{ me { displayName } }"}}),
    )
    .await;
    let mut data = next_json(&mut ws).await;
    while data["type"] == "ka" {
        data = next_json(&mut ws).await;
    }
    assert_eq!(data["type"], "data", "{data:#}");
    assert_eq!(data["payload"]["data"]["me"]["displayName"], "ann");
    let mut complete = next_json(&mut ws).await;
    while complete["type"] == "ka" {
        complete = next_json(&mut ws).await;
    }
    assert_eq!(complete, json!({"type": "complete", "id": "a"}));

    let mut ws = ws_connect_with(addr, "graphql-ws").await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_error");
}
