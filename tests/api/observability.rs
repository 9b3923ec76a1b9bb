//! The view from operations: the `/metrics` series after real requests (statement counts equal
//! to what the request sent, a bounded `operation` label), FV_METRICS_LISTEN, the slow request
//! log, and OTLP traces received by a collector started here.

use std::{
    collections::HashMap,
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{Request, StatusCode, header},
};
use finvision::http::observe::MAX_OPERATION_NAMES;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value, trace::v1::Span,
};
use prost::Message;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{
    helpers::{TestApp, TestUser},
    websocket::{next_json, send, serve, ws_connect},
};

/// `/metrics` as the public router serves it.
async fn scrape(app: &TestApp) -> String {
    let (status, _, body) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body).unwrap()
}

/// The sum of the samples of `name` whose labels include every one of `labels` (`None` when
/// there is none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, series_labels) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if matches {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

/// The values the `label` label takes in the series of `name`.
fn label_values(text: &str, name: &str, label: &str) -> Vec<String> {
    let prefix = format!("{name}{{");
    let key = format!("{label}=\"");
    let mut values: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let start = l.find(&key)? + key.len();
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .collect();
    values.sort();
    values.dedup();
    values
}

/// POST one operation with a request id of our choosing.
async fn post(app: &TestApp, user: &TestUser, request_id: &str, body: Value) -> Value {
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", user.token))
        .header("x-request-id", request_id)
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, bytes) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(body["errors"].is_null(), "{body:#}");
    body
}

const MEMBERS: &str = "query ObsMembers { organizations(first: 10) { nodes { name members(first: 10) { nodes { role user { email } } } } } }";

#[tokio::test]
async fn request_series_count_what_the_request_did() {
    let app = TestApp::spawn().await;
    let owner = app.user("obs-owner").await;
    for slug in ["obs-a", "obs-b", "obs-c"] {
        app.organization(&owner, slug).await;
    }

    let before = scrape(&app).await;
    let statements = app.statements();
    let body = post(&app, &owner, "obs-members-1", json!({"query": MEMBERS})).await;
    let sent = u32::try_from(app.statements() - statements).unwrap();
    assert_eq!(
        body["data"]["organizations"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels).unwrap_or(0.0) - sample(&before, name, labels).unwrap_or(0.0)
    };

    // One operation, one latency sample under its own name and type.
    let op = [("operation", "ObsMembers")];
    assert_eq!(
        delta(
            "fv_graphql_operation_duration_seconds_count",
            &[("operation", "ObsMembers"), ("type", "query")]
        ),
        1.0
    );
    assert!(delta("fv_graphql_operation_duration_seconds_sum", &op) > 0.0);
    // The statements of the request (authentication included) are what the pool sent.
    assert!(sent >= 3, "{sent}");
    assert_eq!(delta("fv_db_statements_per_request_count", &op), 1.0);
    assert_eq!(
        delta("fv_db_statements_per_request_sum", &op),
        f64::from(sent)
    );
    // Each of them timed, each checked out of the pool after a measured wait (other tests'
    // statements may land in these process-wide series too: at least ours).
    assert!(delta("fv_db_statement_duration_seconds_count", &[]) >= f64::from(sent));
    assert!(delta("fv_db_pool_wait_seconds_count", &[("pool", "primary")]) >= 1.0);
    // The members of the three organizations: one batch of three keys; their users, one batch.
    let batch = [("loader", "MembershipsOfOrganization")];
    assert!(delta("fv_dataloader_batch_size_count", &batch) >= 1.0);
    assert!(delta("fv_dataloader_batch_size_sum", &batch) >= 3.0);
    assert!(
        after.contains("fv_dataloader_batch_size_bucket{loader=\"MembershipsOfOrganization\""),
        "a histogram, with buckets"
    );
    // Nobody waits for argon2 now.
    assert_eq!(sample(&after, "fv_argon2_queue_depth", &[]), Some(0.0));
}

#[tokio::test]
async fn the_operation_label_stays_bounded() {
    let app = TestApp::spawn().await;
    let owner = app.user("obs-bound").await;
    let other = |text: &str| {
        sample(
            text,
            "fv_graphql_operation_duration_seconds_count",
            &[("operation", "other")],
        )
        .unwrap_or(0.0)
    };
    let before = other(&scrape(&app).await);
    for i in 0..500 {
        let query = format!("query ObsBound{i} {{ __typename }}");
        post(&app, &owner, "obs-bound", json!({"query": query})).await;
    }
    post(
        &app,
        &owner,
        "obs-bound",
        json!({"query": "{ __typename }"}),
    )
    .await;
    let text = scrape(&app).await;
    let ours: Vec<String> = label_values(
        &text,
        "fv_graphql_operation_duration_seconds_count",
        "operation",
    )
    .into_iter()
    .filter(|v| v.starts_with("ObsBound"))
    .collect();
    // This app admitted the first names it saw, and no more; the rest went to `other`.
    assert_eq!(ours.len(), MAX_OPERATION_NAMES);
    assert!(ours.contains(&"ObsBound0".to_owned()));
    assert!(!ours.contains(&"ObsBound499".to_owned()));
    assert!(other(&text) - before >= f64::from(500 - u32::try_from(MAX_OPERATION_NAMES).unwrap()));
    assert!(
        sample(
            &text,
            "fv_graphql_operation_duration_seconds_count",
            &[("operation", "anonymous")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    // The per-request statement series share the rule.
    let statement_labels: Vec<String> =
        label_values(&text, "fv_db_statements_per_request_count", "operation")
            .into_iter()
            .filter(|v| v.starts_with("ObsBound"))
            .collect();
    assert_eq!(statement_labels.len(), MAX_OPERATION_NAMES);
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_public_listener() {
    let app = TestApp::spawn_with(|config| {
        config.metrics_listen = Some("127.0.0.1:9464".parse().unwrap());
    })
    .await;
    let (status, _, _) = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The router of the metrics listener (`main` serves it on FV_METRICS_LISTEN).
    let response = finvision::http::metrics_router(app.app.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("fv_db_pool_connections"));
    // Without the setting, the public listener has it.
    let public = TestApp::spawn().await;
    assert!(scrape(&public).await.contains("fv_db_pool_connections"));
}

#[tokio::test]
async fn subscriptions_lag_and_listen_reconnects_are_counted() {
    let app = TestApp::spawn().await;
    crate::subscription::wait_listening(&app.app).await;
    let owner = app.user("obs-sub").await;
    let org = app.organization(&owner, "obs-sub").await;
    for i in 0..3 {
        app.gql(
            Some(&owner.token),
            "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
            json!({"i": {"organizationId": org, "name": format!("Plan {i}"), "currency": "USD",
                "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
        )
        .await
        .data();
    }
    let before = scrape(&app).await;
    let addr = serve(&app).await;
    let mut ws = ws_connect(addr).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", owner.token)}})).await;
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    send(&mut ws, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription($org: ID!) { auditEvents(organizationId: $org, after: \"0\") { sequence } }", "variables": {"org": org}}})).await;
    // The organization's creation and three models, replayed: the first is three behind.
    for _ in 0..4 {
        assert_eq!(next_json(&mut ws).await["type"], "next");
    }
    let during = scrape(&app).await;
    assert!(sample(&during, "fv_audit_subscriptions_active", &[]).unwrap() >= 1.0);
    let lag = |text: &str, suffix: &str| {
        sample(text, &format!("fv_audit_stream_lag{suffix}"), &[]).unwrap_or(0.0)
    };
    assert!(lag(&during, "_count") - lag(&before, "_count") >= 4.0);
    // 3 + 2 + 1 + 0 sequences behind at least (sequences are shared by every organization).
    assert!(lag(&during, "_sum") - lag(&before, "_sum") >= 6.0);

    // The listening connection killed: it comes back, counted.
    let reconnects =
        |text: &str| sample(text, "fv_audit_listen_reconnects_total", &[]).unwrap_or(0.0);
    let reconnected_before = reconnects(&during);
    app.sql_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'finvision-listener'")
        .await;
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(&app).await;
        if reconnects(&text) > reconnected_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reconnects(&text) > reconnected_before,
        "no reconnect counted"
    );
    drop(ws);
}

/// A `MakeWriter` into a shared buffer: the log lines a test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_slow_request_is_logged_with_its_slowest_statement_and_no_values() {
    let app = TestApp::spawn_with(|config| config.slow_request_ms = Some(0)).await;
    let owner = app.user("obs-slow").await;
    let captured = Captured::default();
    // This test's runtime runs on this thread only: everything the request logs lands here.
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    let secret = "Zebra-Secret-81723";
    let statements = app.statements();
    post(
        &app,
        &owner,
        "obs-slow-42",
        json!({
            "query": "mutation ObsSlowCreate($input: CreateOrganizationInput!) { createOrganization(input: $input) { id name } }",
            "variables": {"input": {"name": secret, "slug": "zebra-secret-81723"}},
        }),
    )
    .await;
    let sent = app.statements() - statements;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("slow request") && l.contains("obs-slow-42"))
        .unwrap_or_else(|| panic!("no slow request line in {log}"));
    assert!(line.contains("operation=\"ObsSlowCreate\""), "{line}");
    assert!(line.contains("path=\"/graphql\""), "{line}");
    assert!(line.contains("request_id=\"obs-slow-42\""), "{line}");
    // The request's own statements: some, and no more than the whole app sent meanwhile (its
    // background work, the report queue's start-up for one, may run at the same time).
    let counted: u64 = line
        .split("statements=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no statement count in {line}"));
    assert!(
        counted >= 1 && counted <= sent,
        "{counted} of {sent}: {line}"
    );
    let slowest = line
        .split("slowest_statement=")
        .nth(1)
        .unwrap_or_else(|| panic!("no statement in {line}"));
    assert!(
        ["SELECT", "INSERT", "UPDATE", "BEGIN", "COMMIT"]
            .iter()
            .any(|keyword| slowest.contains(keyword)),
        "{line}"
    );
    assert!(line.contains("slowest_statement_ms="), "{line}");
    // The organization's name was bound in an INSERT: no value reaches the log.
    assert!(!log.contains(secret), "{log}");
    assert!(!log.contains("zebra-secret-81723"), "{log}");
}

/// An OTLP/HTTP collector on its own thread (the exporter's flush blocks the test's): every
/// span it receives.
fn collector() -> (SocketAddr, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let received = spans.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let router = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: Bytes| {
                    let received = received.clone();
                    async move {
                        let request = ExportTraceServiceRequest::decode(body).unwrap();
                        let mut spans = received.lock().unwrap();
                        for resource in request.resource_spans {
                            for scope in resource.scope_spans {
                                spans.extend(scope.spans);
                            }
                        }
                        StatusCode::OK
                    }
                }),
            );
            axum::serve(listener, router).await.unwrap();
        });
    });
    (rx.recv().unwrap(), spans)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

/// Set in the child process that runs the traces test alone.
const TRACES_CHILD: &str = "FV_TEST_TRACES_CHILD";

/// Run in a process of its own: `tracing` caches per call site whether anyone listens, and a
/// call site first reached by another test's thread (with no subscriber) can stay disabled for
/// the subscriber this test installs on its own thread. The child runs only this test, and the
/// traces it turns on stay out of the other tests.
#[test]
fn traces_reach_the_collector_as_one_tree_under_the_callers_span() {
    if std::env::var_os(TRACES_CHILD).is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(traces_tree());
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "observability::traces_reach_the_collector_as_one_tree_under_the_callers_span",
        ])
        .env(TRACES_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn traces_tree() {
    let (addr, spans) = collector();
    let provider = finvision::telemetry::otlp_provider(&format!("http://{addr}")).unwrap();
    use tracing_subscriber::prelude::*;
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(finvision::telemetry::otlp_layer(&provider)),
    );
    // Every request authenticates against the database: its statement is the request's own.
    let app = TestApp::spawn_uncached().await;
    let owner = app.user("obs-trace").await;
    app.organization(&owner, "obs-trace-a").await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", owner.token))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .body(Body::from(
            json!({
                "query": "mutation ObsTraced($input: CreateOrganizationInput!) { createOrganization(input: $input) { id members(first: 5) { nodes { user { email } } } } }",
                "variables": {"input": {"name": "Traced-Secret-5521", "slug": "obs-traced"}},
            })
            .to_string(),
        ))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // The request span closed with the response body `send` read: every span has ended.
    provider.force_flush().unwrap();

    let spans = spans.lock().unwrap().clone();
    let ours: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let by_id: HashMap<String, &Span> = ours.iter().map(|s| (hex(&s.span_id), *s)).collect();
    let names: Vec<String> = ours
        .iter()
        .map(|s| {
            let parent = by_id
                .get(&hex(&s.parent_span_id))
                .map_or("-", |p| p.name.as_str());
            format!("{} < {parent}", s.name)
        })
        .collect();
    // The request span: a child of the caller's span, in the caller's trace.
    let request_span = ours.iter().find(|s| s.name == "http").unwrap_or_else(|| {
        let all: Vec<(String, String)> = spans
            .iter()
            .map(|s| (s.name.clone(), hex(&s.trace_id)))
            .collect();
        panic!("no request span among {names:?}; received {all:?}")
    });
    assert_eq!(hex(&request_span.parent_span_id), caller_span);
    let request_id = hex(&request_span.span_id);
    let ancestors = |span: &Span| {
        let mut chain = Vec::new();
        let mut parent = hex(&span.parent_span_id);
        while let Some(p) = by_id.get(&parent) {
            chain.push(p.name.clone());
            parent = hex(&p.parent_span_id);
        }
        (chain, parent)
    };
    // The mutation field, a child of the request.
    let mutation = ours
        .iter()
        .find(|s| s.name == "Mutation.createOrganization")
        .unwrap_or_else(|| panic!("no mutation span among {names:?}"));
    assert_eq!(hex(&mutation.parent_span_id), request_id);
    // Statements: children of the request (authentication), of the mutation field and of
    // DataLoader batches, all under the request; their text without values.
    let statements: Vec<&&Span> = ours.iter().filter(|s| s.name == "db.statement").collect();
    assert!(statements.len() >= 3, "{names:?}");
    for statement in &statements {
        let (chain, root) = ancestors(statement);
        assert!(chain.contains(&"http".to_owned()), "{chain:?}");
        assert_eq!(root, caller_span);
        let text = attribute(statement, "db.query.text").expect("the statement's text");
        assert!(!text.contains("Traced-Secret-5521"), "{text}");
    }
    let under = |statement: &Span, name: &str| ancestors(statement).0.iter().any(|n| n == name);
    assert!(
        statements
            .iter()
            .any(|s| under(s, "authenticate") && !under(s, "Mutation.createOrganization")),
        "authentication's statements are the request's own: {names:#?}"
    );
    assert!(
        statements
            .iter()
            .any(|s| under(s, "Mutation.createOrganization") && !under(s, "dataloader.batch")),
        "the mutation's statements are its field's: {names:#?}"
    );
    // A DataLoader batch (the new organization's members), under the request, with its
    // statement as a child.
    let batch = ours
        .iter()
        .find(|s| {
            s.name == "dataloader.batch"
                && attribute(s, "loader").as_deref() == Some("MembershipsOfOrganization")
        })
        .unwrap_or_else(|| panic!("no batch span among {names:?}"));
    assert!(ancestors(batch).0.contains(&"http".to_owned()));
    assert!(
        statements
            .iter()
            .any(|s| hex(&s.parent_span_id) == hex(&batch.span_id))
    );
    provider.shutdown().unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
