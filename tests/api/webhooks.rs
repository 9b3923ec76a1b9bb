//! Audit webhooks through the API against PostgreSQL, with a receiver inside the test on
//! loopback (`FV_WEBHOOK_ALLOW_PRIVATE=1`, as the README says): ordered exactly-once delivery,
//! at least once across failures, restarts and two instances, signatures checked with an
//! independent implementation of the Standard Webhooks scheme, replay, the SSRF guard, and
//! isolation from a slow receiver.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use finvision::config::Config;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, TestUser, eventually};

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// 200 at once.
    Accept,
    /// This status at once.
    Status(u16),
    /// 200 after this long.
    Slow(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    /// What it answered (0: it was still waiting when the request ended).
    status: u16,
    at: Instant,
    /// The events' sequences (read once, on arrival).
    sequences: Vec<i64>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn sequences(&self) -> Vec<i64> {
        self.sequences.clone()
    }

    fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }
}

#[derive(Default)]
struct ReceiverState {
    mode: Option<Mode>,
    received: Vec<Received>,
}

/// A webhook receiver on 127.0.0.1 that records every request.
#[derive(Clone)]
struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
    addr: SocketAddr,
}

async fn hook(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mode = state.lock().unwrap().mode.unwrap_or(Mode::Accept);
    let index = {
        let mut s = state.lock().unwrap();
        let json: Value = serde_json::from_slice(&body).expect("a JSON body");
        let sequences = json["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
            .collect();
        s.received.push(Received {
            headers,
            body: body.to_vec(),
            status: 0,
            at: Instant::now(),
            sequences,
        });
        s.received.len() - 1
    };
    let status = match mode {
        Mode::Accept => 200,
        Mode::Status(code) => code,
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            200
        }
    };
    state.lock().unwrap().received[index].status = status;
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { state, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The sequences of every batch answered 2xx, in the order received.
    fn acknowledged(&self) -> Vec<i64> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| r.sequences.iter().copied())
            .collect()
    }
}

/// The Standard Webhooks verification, written from the specification (not the server's code):
/// the secret's bytes are the base64 after `whsec_`; the signed content is
/// `{webhook-id}.{webhook-timestamp}.{body}`; any `v1,` signature of the header may match.
fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let content = format!(
        "{}.{}.",
        received.header("webhook-id"),
        received.header("webhook-timestamp")
    );
    mac.update(content.as_bytes());
    mac.update(&received.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    received
        .header("webhook-signature")
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

/// Fast settings for tests: loopback allowed, short polls, leases and retries.
fn fast(config: &mut Config) {
    config.webhook_allow_private = true;
    config.webhook_poll_ms = 100;
    config.webhook_lease_secs = 1;
    config.webhook_retry_base_ms = 50;
    config.webhook_timeout_ms = 2_000;
}

const CREATE: &str = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id url active lastDeliveredSequence } } }";
const ENDPOINT: &str = "query($id: ID!) { node(id: $id) { ... on WebhookEndpoint { id url active lastDeliveredSequence lastError retryingSince failingSince deliveries(first: 100) { nodes { webhookId succeeded statusCode durationMs error eventCount firstSequence lastSequence } } } } }";

struct Fixture {
    owner: TestUser,
    org: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    Fixture { owner, org }
}

/// Create an endpoint; returns (id, secret, cursor at creation).
async fn create(app: &TestApp, f: &Fixture, url: &str, extra: Value) -> (String, String, i64) {
    let mut input = json!({"organizationId": f.org, "url": url, "description": "archive"});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    let res = app
        .gql(Some(&f.owner.token), CREATE, json!({"input": input}))
        .await;
    let payload = &res.data()["createWebhookEndpoint"];
    (
        payload["endpoint"]["id"].as_str().unwrap().to_owned(),
        payload["secret"].as_str().unwrap().to_owned(),
        payload["endpoint"]["lastDeliveredSequence"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

async fn endpoint(app: &TestApp, f: &Fixture, id: &str) -> Value {
    let res = app
        .gql(Some(&f.owner.token), ENDPOINT, json!({"id": id}))
        .await;
    res.data()["node"].clone()
}

/// `n` audited writes in the organization (API keys: cheap, one event each).
async fn write_events(app: &TestApp, f: &Fixture, n: usize, prefix: &str) {
    for i in 0..n {
        let res = app
            .gql(
                Some(&f.owner.token),
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }",
                json!({"input": {"organizationId": f.org, "name": format!("{prefix}-{i}"), "role": "VIEWER"}}),
            )
            .await;
        res.data();
    }
}

/// The organization's uuid from its global ID.
fn uuid_of(global: &str) -> String {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(global).unwrap()).unwrap();
    raw.split_once(':').unwrap().1.to_owned()
}

/// The organization's sequences after `after`, from the table.
async fn sequences_after(app: &TestApp, f: &Fixture, after: i64) -> Vec<i64> {
    app.sql_texts(&format!(
        "SELECT id::text AS t FROM audit_events WHERE organization_id = '{}' AND id > {after} ORDER BY id",
        uuid_of(&f.org)
    ))
    .await
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

/// Wait (up to 10 s) until the receiver acknowledged every event of the organization after
/// `after`.
async fn all_acknowledged(app: &TestApp, f: &Fixture, receiver: &Receiver, after: i64) {
    let expected = sequences_after(app, f, after).await;
    let last = *expected.last().unwrap();
    eventually("every event acknowledged", || async {
        receiver.acknowledged().contains(&last)
    })
    .await;
}

#[tokio::test]
async fn events_arrive_in_order_exactly_once_and_signed() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    let (id, secret, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
    assert!(secret.starts_with("whsec_"));
    write_events(&app, &f, 12, "k").await;
    all_acknowledged(&app, &f, &receiver, cursor).await;

    // Exactly once, in order, nothing missing: the endpoint's own creation first.
    let expected = sequences_after(&app, &f, cursor).await;
    assert_eq!(receiver.acknowledged(), expected);
    let received = receiver.received();
    let first = received[0].json();
    assert_eq!(first["type"], "audit.events");
    assert_eq!(first["organizationId"], f.org);
    assert_eq!(first["events"][0]["action"], "webhook.create");
    assert_eq!(first["events"][0]["entityId"], id);
    assert_eq!(first["events"][0]["organizationId"], f.org);
    assert_eq!(first["events"][0]["actor"]["__typename"], "User");
    assert_eq!(first["events"][0]["actor"]["id"], f.owner.id);
    assert_eq!(first["events"][0]["newValues"]["url"], receiver.url());
    // The subscription's shape: the same event read through GraphQL agrees.
    let event_id = first["events"][0]["id"].as_str().unwrap();
    let res = app
        .gql(
            Some(&f.owner.token),
            "query($id: ID!) { node(id: $id) { ... on AuditEvent { id sequence action entityType entityId hash prevHash createdAt requestId } } }",
            json!({"id": event_id}),
        )
        .await;
    let node = &res.data()["node"];
    for key in [
        "id",
        "sequence",
        "action",
        "entityType",
        "entityId",
        "hash",
        "prevHash",
        "requestId",
    ] {
        assert_eq!(node[key], first["events"][0][key], "{key}");
    }

    // Every request carries the Standard Webhooks headers, and its signature verifies.
    for r in &received {
        assert!(r.header("webhook-id").starts_with("msg_"));
        let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert!(
            verify(&secret, r),
            "signature of {}",
            r.header("webhook-id")
        );
        assert_eq!(r.header("content-type"), "application/json");
    }
    // A different secret does not verify: the check can fail.
    let mut tampered = received[0].clone();
    tampered.body.push(b' ');
    assert!(!verify(&secret, &tampered));

    let node = endpoint(&app, &f, &id).await;
    assert_eq!(
        node["lastDeliveredSequence"],
        expected.last().unwrap().to_string()
    );
    assert_eq!(node["lastError"], Value::Null);
    let deliveries = node["deliveries"]["nodes"].as_array().unwrap();
    assert_eq!(deliveries.len(), received.len());
    assert!(
        deliveries
            .iter()
            .all(|d| d["succeeded"] == true && d["statusCode"] == 200)
    );
}

#[tokio::test]
async fn batches_hold_at_most_the_configured_number_of_events() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhook_batch = 3;
    })
    .await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    // Created paused: the events wait, then go in batches of three.
    let (id, _, cursor) = create(&app, &f, &receiver.url(), json!({"active": false})).await;
    write_events(&app, &f, 8, "k").await;
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { active } }",
            json!({"input": {"id": id, "active": true}}),
        )
        .await;
    assert_eq!(res.data()["updateWebhookEndpoint"]["active"], true);
    all_acknowledged(&app, &f, &receiver, cursor).await;
    assert_eq!(
        receiver.acknowledged(),
        sequences_after(&app, &f, cursor).await
    );
    let sizes: Vec<usize> = receiver
        .received()
        .iter()
        .map(|r| r.sequences().len())
        .collect();
    assert!(sizes.iter().all(|n| *n <= 3), "{sizes:?}");
    assert!(sizes.iter().filter(|n| **n == 3).count() >= 3, "{sizes:?}");
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_batch_again_until_it_accepts() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    receiver.set(Mode::Status(500));
    let (id, secret, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
    write_events(&app, &f, 5, "k").await;
    eventually("three failed attempts", || async {
        receiver.received().len() >= 3
    })
    .await;
    let node = endpoint(&app, &f, &id).await;
    assert_eq!(
        node["lastDeliveredSequence"],
        cursor.to_string(),
        "no 2xx, no move"
    );
    assert_eq!(node["lastError"], "HTTP 500");
    assert!(node["retryingSince"].is_string());
    receiver.set(Mode::Accept);
    all_acknowledged(&app, &f, &receiver, cursor).await;

    let received = receiver.received();
    // The retries of the first batch are the same message: same id, same events.
    let failed: Vec<&Received> = received.iter().filter(|r| r.status == 500).collect();
    let first_ok = received.iter().find(|r| r.status == 200).unwrap();
    assert!(failed.len() >= 3);
    for r in &failed {
        assert_eq!(r.header("webhook-id"), failed[0].header("webhook-id"));
        assert_eq!(r.sequences(), failed[0].sequences());
        assert!(verify(&secret, r));
    }
    assert_eq!(
        first_ok.header("webhook-id"),
        failed[0].header("webhook-id")
    );
    // Backoff: the attempts spread out.
    assert!(failed[2].at - failed[0].at >= Duration::from_millis(50));
    // At least once, in order, nothing missing.
    assert_eq!(
        receiver.acknowledged(),
        sequences_after(&app, &f, cursor).await
    );
    let node = endpoint(&app, &f, &id).await;
    assert_eq!(node["lastError"], Value::Null);
    assert_eq!(node["retryingSince"], Value::Null);
    let deliveries = node["deliveries"]["nodes"].as_array().unwrap();
    assert!(
        deliveries
            .iter()
            .any(|d| d["statusCode"] == 500 && d["succeeded"] == false && d["error"] == "HTTP 500")
    );
}

#[tokio::test]
async fn past_the_retry_horizon_an_endpoint_is_paused_and_resumes_from_its_cursor() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhook_retry_horizon_secs = 1;
    })
    .await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    receiver.set(Mode::Status(503));
    let (id, _, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
    write_events(&app, &f, 3, "k").await;
    eventually("the endpoint is marked failing", || async {
        endpoint(&app, &f, &id).await["failingSince"].is_string()
    })
    .await;
    let node = endpoint(&app, &f, &id).await;
    assert_eq!(node["lastDeliveredSequence"], cursor.to_string());
    assert_eq!(node["active"], true);
    // Paused: no more attempts.
    let attempts = receiver.received().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received().len(), attempts);

    // Resuming continues from the cursor: nothing skipped.
    receiver.set(Mode::Accept);
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { failingSince active } }",
            json!({"input": {"id": id, "active": true}}),
        )
        .await;
    assert_eq!(
        res.data()["updateWebhookEndpoint"]["failingSince"],
        Value::Null
    );
    all_acknowledged(&app, &f, &receiver, cursor).await;
    assert_eq!(
        receiver.acknowledged(),
        sequences_after(&app, &f, cursor).await
    );
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"webhook.update".to_owned()));
}

#[tokio::test]
async fn a_restart_mid_batch_sends_that_batch_again_and_loses_nothing() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    // The first batch hangs in the receiver while the server stops.
    receiver.set(Mode::Slow(Duration::from_secs(30)));
    let (_, secret, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
    write_events(&app, &f, 4, "before").await;
    eventually("a batch in flight", || async {
        !receiver.received().is_empty()
    })
    .await;
    let in_flight = receiver.received()[0].clone();

    // Stop the server (its tasks are aborted with it) and start another on the same database.
    let TestApp {
        app: old,
        router,
        db,
        pool,
    } = app;
    drop(router);
    drop(old);
    drop(pool);
    receiver.set(Mode::Accept);
    let app = TestApp::spawn_on(db, fast).await;
    write_events(&app, &f, 4, "after").await;
    all_acknowledged(&app, &f, &receiver, cursor).await;

    // The batch that was in flight came again, as the same message.
    let received = receiver.received();
    let again = received
        .iter()
        .find(|r| r.status == 200 && r.header("webhook-id") == in_flight.header("webhook-id"))
        .expect("the batch in flight sent again");
    assert_eq!(again.sequences()[0], in_flight.sequences()[0]);
    assert!(received.iter().all(|r| verify(&secret, r)));
    assert_eq!(
        receiver.acknowledged(),
        sequences_after(&app, &f, cursor).await
    );
}

#[tokio::test]
async fn two_instances_deliver_every_endpoint_in_order_with_nothing_missing() {
    let app = TestApp::spawn_with(fast).await;
    let mut config = Config::for_database(&app.db.app_url);
    config.object_store_url = Some("memory://".into());
    fast(&mut config);
    let second = finvision::App::new(config, app.pool.clone()).expect("a second instance");
    let f = fixture(&app).await;
    let mut endpoints = Vec::new();
    for _ in 0..3 {
        let receiver = Receiver::start().await;
        let (_, _, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
        endpoints.push((receiver, cursor));
    }
    write_events(&app, &f, 15, "k").await;
    for (receiver, cursor) in &endpoints {
        all_acknowledged(&app, &f, receiver, *cursor).await;
        assert_eq!(
            receiver.acknowledged(),
            sequences_after(&app, &f, *cursor).await
        );
    }
    // Both instances took part in claiming (one lease per endpoint, whichever holds it).
    let holders = app
        .sql_texts("SELECT count(DISTINCT leased_by)::text AS t FROM webhook_endpoints WHERE leased_by IS NOT NULL")
        .await;
    assert!(["1", "2"].contains(&holders[0].as_str()), "{holders:?}");
    drop(second);
}

#[tokio::test]
async fn replay_moves_the_cursor_back_and_delivers_again_in_order() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    let (id, _, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
    write_events(&app, &f, 6, "k").await;
    all_acknowledged(&app, &f, &receiver, cursor).await;
    let delivered = sequences_after(&app, &f, cursor).await;
    let from = delivered[2];

    const REPLAY: &str = "mutation($id: ID!, $after: String!) { replayWebhook(endpointId: $id, after: $after) { lastDeliveredSequence } }";
    // Forward is not a replay.
    let last = endpoint(&app, &f, &id).await["lastDeliveredSequence"]
        .as_str()
        .unwrap()
        .to_owned();
    let ahead = (last.parse::<i64>().unwrap() + 1).to_string();
    let res = app
        .gql(
            Some(&f.owner.token),
            REPLAY,
            json!({"id": id, "after": ahead}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    let res = app
        .gql(
            Some(&f.owner.token),
            REPLAY,
            json!({"id": id, "after": "x"}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");

    let before = receiver.acknowledged().len();
    let res = app
        .gql(
            Some(&f.owner.token),
            REPLAY,
            json!({"id": id, "after": from.to_string()}),
        )
        .await;
    assert_eq!(
        res.data()["replayWebhook"]["lastDeliveredSequence"],
        from.to_string()
    );
    // The replay's own event comes last, after every event after `from` again.
    let expected_again = sequences_after(&app, &f, from).await;
    let newest = *expected_again.last().unwrap();
    eventually("the replay delivered", || async {
        receiver.acknowledged().contains(&newest)
    })
    .await;
    assert_eq!(receiver.acknowledged()[before..], expected_again[..]);
    let replayed = app.audit_rows().await;
    let event = replayed
        .iter()
        .rev()
        .find(|r| r.action == "webhook.replay")
        .unwrap();
    assert_eq!(
        event.old_values.as_ref().unwrap()["lastDeliveredSequence"],
        last
    );
    assert_eq!(
        event.new_values.as_ref().unwrap()["lastDeliveredSequence"],
        from.to_string()
    );
}

#[tokio::test]
async fn a_filter_sends_only_what_it_names_and_the_cursor_passes_the_rest() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    let (id, _, _) = create(
        &app,
        &f,
        &receiver.url(),
        json!({"actions": ["api_key.revoke"]}),
    )
    .await;
    write_events(&app, &f, 3, "k").await;
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } } }",
            json!({"input": {"organizationId": f.org, "name": "gone", "role": "VIEWER"}}),
        )
        .await;
    let key = res.data()["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({"id": key}),
        )
        .await;
    res.data();
    eventually("the revocation delivered", || async {
        !receiver.acknowledged().is_empty()
    })
    .await;
    let events: Vec<Value> = receiver
        .received()
        .iter()
        .flat_map(|r| r.json()["events"].as_array().unwrap().clone())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "api_key.revoke");
    let head = sequences_after(&app, &f, 0).await;
    let last = head.last().unwrap().to_string();
    eventually("the cursor at the head", || async {
        endpoint(&app, &f, &id).await["lastDeliveredSequence"] == last
    })
    .await;
}

#[tokio::test]
async fn managing_endpoints_is_admin_only_and_audited() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let analyst = app.user("analyst").await;
    let stranger = app.user("stranger").await;
    app.add_member(&f.owner, &f.org, &analyst, "ANALYST").await;
    let receiver = Receiver::start().await;
    let input = json!({"input": {"organizationId": f.org, "url": receiver.url()}});
    let res = app.gql(Some(&analyst.token), CREATE, input.clone()).await;
    assert_eq!(res.code(), "FORBIDDEN");
    let res = app.gql(Some(&stranger.token), CREATE, input.clone()).await;
    assert_eq!(res.code(), "NOT_FOUND");
    assert_eq!(app.count_rows("webhook_endpoints").await, 0);

    let (id, secret, _) = create(&app, &f, &receiver.url(), json!({})).await;
    // Others do not see it.
    let res = app
        .gql(Some(&analyst.token), ENDPOINT, json!({"id": id}))
        .await;
    assert_eq!(res.data()["node"], Value::Null);
    let res = app
        .gql(
            Some(&analyst.token),
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res.code(), "FORBIDDEN");
    let res = app
        .gql(Some(&f.owner.token), "query($id: ID!) { node(id: $id) { ... on Organization { webhookEndpoints { id url description } } } }", json!({"id": f.org}))
        .await;
    assert_eq!(res.data()["node"]["webhookEndpoints"][0]["id"], id);

    // Rotation: the new secret signs, and the previous one still does for the grace period.
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { id } } }",
            json!({"id": id}),
        )
        .await;
    let rotated = res.data()["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, secret);
    let before = receiver.received().len();
    write_events(&app, &f, 1, "k").await;
    eventually("a batch after the rotation", || async {
        receiver.received().len() > before
    })
    .await;
    let after = receiver.received()[before].clone();
    assert!(verify(&rotated, &after));
    assert!(verify(&secret, &after));
    assert_eq!(after.header("webhook-signature").split(' ').count(), 2);

    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { description actions entityType } }",
            json!({"input": {"id": id, "description": null, "actions": ["model.create"], "entityType": "FinancialModel"}}),
        )
        .await;
    assert_eq!(
        res.data()["updateWebhookEndpoint"],
        json!({"description": null, "actions": ["model.create"], "entityType": "FinancialModel"})
    );
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { id } }",
            json!({"input": {"id": id, "actions": []}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res.data()["deleteWebhookEndpoint"], id);
    assert_eq!(app.count_rows("webhook_endpoints").await, 0);
    assert_eq!(app.count_rows("webhook_deliveries").await, 0);

    let rows = app.audit_rows().await;
    let webhook: Vec<&str> = rows
        .iter()
        .filter(|r| r.entity_type == "WebhookEndpoint")
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        webhook,
        [
            "webhook.create",
            "webhook.rotate_secret",
            "webhook.update",
            "webhook.delete"
        ]
    );
    // No event carries a secret.
    for row in rows.iter().filter(|r| r.entity_type == "WebhookEndpoint") {
        let text = format!("{:?}{:?}", row.old_values, row.new_values);
        assert!(!text.contains("whsec_"), "{text}");
    }
}

#[tokio::test]
async fn private_destinations_are_refused_when_saved_and_when_delivered() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhook_allow_private = false;
    })
    .await;
    let f = fixture(&app).await;
    for url in [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/hook",
        "https://192.168.1.10/hook",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://user:pass@example.com/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let res = app
            .gql(
                Some(&f.owner.token),
                CREATE,
                json!({"input": {"organizationId": f.org, "url": url}}),
            )
            .await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{url}: {:#}", res.body);
        assert_eq!(res.field().as_deref(), Some("input.url"), "{url}");
    }
    assert_eq!(app.count_rows("webhook_endpoints").await, 0);
    assert_eq!(
        app.count_rows("audit_events WHERE action = 'webhook.create'")
            .await,
        0
    );

    // At delivery: an endpoint whose URL became private behind the API (as a name's DNS answer
    // may change) is refused before anything is sent, and its attempts say why.
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    for url in [
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
    ] {
        let org = uuid_of(&f.org);
        app.sql_exec(&format!(
            "INSERT INTO webhook_endpoints (organization_id, url, secret, cursor) \
             VALUES ('{org}', '{url}', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 0)"
        ))
        .await;
        eventually("a refused attempt", || async {
            app.count_rows(&format!(
                "webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE e.url = '{url}' AND d.error LIKE '%public addresses only%' AND d.status_code IS NULL"
            ))
            .await
                > 0
        })
        .await;
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );

    // An update is checked like a creation, and changes nothing when refused.
    let uuid = app
        .sql_texts("SELECT id::text AS t FROM webhook_endpoints LIMIT 1")
        .await[0]
        .clone();
    let id = URL_SAFE_NO_PAD.encode(format!("WebhookEndpoint:{uuid}"));
    let res = app
        .gql(
            Some(&f.owner.token),
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { url } }",
            json!({"input": {"id": id, "url": "https://[::ffff:a9fe:a9fe]/latest"}}),
        )
        .await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{:#}", res.body);
    assert_eq!(res.field().as_deref(), Some("input.url"));
    assert_eq!(
        app.count_rows("audit_events WHERE action = 'webhook.update'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_slow_receiver_slows_neither_requests_nor_other_endpoints() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhook_timeout_ms = 10_000;
    })
    .await;
    let f = fixture(&app).await;
    let slow = Receiver::start().await;
    slow.set(Mode::Slow(Duration::from_secs(8)));
    let quick = Receiver::start().await;
    let (_, _, slow_cursor) = create(&app, &f, &slow.url(), json!({})).await;
    let (_, _, cursor) = create(&app, &f, &quick.url(), json!({})).await;
    eventually("the slow receiver holds a batch", || async {
        !slow.received().is_empty()
    })
    .await;
    let started = Instant::now();
    write_events(&app, &f, 5, "k").await;
    let writing = started.elapsed();
    all_acknowledged(&app, &f, &quick, cursor).await;
    let delivered = started.elapsed();
    // The quick endpoint got everything while the slow one still waits on its first batch.
    assert!(
        slow.acknowledged().is_empty(),
        "the slow receiver answered already"
    );
    assert!(delivered < Duration::from_secs(6), "{delivered:?}");
    assert!(writing < Duration::from_secs(5), "{writing:?}");
    assert_eq!(
        quick.acknowledged(),
        sequences_after(&app, &f, cursor).await
    );
    assert!(slow_cursor < cursor);
}

/// Throughput to one endpoint and lag under a write load (figures in the README): 5,000 events
/// written at once, timed until the receiver acknowledged the last; then writes through the API
/// while delivery runs, each event's lag being its receipt minus its commit.
#[tokio::test]
#[allow(clippy::cast_precision_loss)]
async fn delivery_throughput_and_lag() {
    let app = TestApp::spawn_with(fast).await;
    let f = fixture(&app).await;
    let receiver = Receiver::start().await;
    let (_, _, cursor) = create(&app, &f, &receiver.url(), json!({})).await;
    all_acknowledged(&app, &f, &receiver, cursor).await;

    let org = uuid_of(&f.org);
    const EVENTS: i64 = 5_000;
    let started = Instant::now();
    app.sql_exec(&format!(
        "INSERT INTO audit_events (organization_id, action, entity_type, new_values, hash) \
         SELECT '{org}', 'bench.event', 'Bench', jsonb_build_object('n', n), '\\x00' \
         FROM generate_series(1, {EVENTS}) AS n"
    ))
    .await;
    let last = *sequences_after(&app, &f, cursor).await.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !receiver.acknowledged().contains(&last) {
        assert!(
            Instant::now() < deadline,
            "5,000 events not delivered in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let rate = EVENTS as f64 / elapsed.as_secs_f64();
    println!(
        "webhook throughput: {EVENTS} events in {elapsed:?} = {rate:.0} events/s to one endpoint"
    );

    // Lag: 200 API writes, each event's receipt minus its commit (`createdAt`).
    let before = receiver.received().len();
    write_events(&app, &f, 200, "load").await;
    let head = *sequences_after(&app, &f, cursor).await.last().unwrap();
    eventually("the load delivered", || async {
        receiver.acknowledged().contains(&head)
    })
    .await;
    let mut lags: Vec<f64> = Vec::new();
    let now_instant = Instant::now();
    let now_wall = chrono::Utc::now();
    for r in &receiver.received()[before..] {
        let received_wall = now_wall - chrono::Duration::from_std(now_instant - r.at).unwrap();
        for event in r.json()["events"].as_array().unwrap() {
            let created: chrono::DateTime<chrono::Utc> =
                event["createdAt"].as_str().unwrap().parse().unwrap();
            lags.push((received_wall - created).num_microseconds().unwrap() as f64 / 1000.0);
        }
    }
    lags.sort_by(f64::total_cmp);
    let p = |q: f64| lags[((lags.len() - 1) as f64 * q) as usize];
    println!(
        "webhook lag under API writes: {} events, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lags.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    assert!(lags.len() >= 200);
}
