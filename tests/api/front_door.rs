//! The HTTP layer in front of the schema: content types, GET, batches, body and query limits,
//! introspection, error codes, operational endpoints, request ids, GraphiQL, the pool timeout
//! and the WebSocket endpoint.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use serde_json::{Value, json};

use crate::helpers::{Gql, PASSWORD, TestApp};

/// `getIntrospectionQuery()` of graphql-js 16 with its default options: what the vendored
/// GraphiQL sends (9 levels of `ofType`; the fixture's README says where it comes from).
const INTROSPECTION_QUERY: &str = include_str!("fixtures/introspection/graphiql.graphql");

/// A register mutation as a JSON body: used to prove a refused request executed nothing.
fn register_body(email: &str) -> Value {
    json!({
        "query": "mutation($input: RegisterInput!) { register(input: $input) { token } }",
        "variables": {"input": {"email": email, "password": PASSWORD, "displayName": "Eve"}},
    })
}

/// Percent-encode everything but unreserved characters (RFC 3986).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(bytes)))
}

/// The `extensions.code` of the first error of a raw JSON body.
#[track_caller]
fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no extensions.code: {body:#}"))
}

async fn get(app: &TestApp, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    app.send(Request::get(uri).body(Body::empty()).expect("request"))
        .await
}

#[tokio::test]
async fn posts_that_are_not_json_are_refused_unexecuted() {
    let app = TestApp::spawn().await;
    let statements = app.statements();
    for (i, content_type) in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ]
    .into_iter()
    .enumerate()
    {
        let request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(
                register_body(&format!("eve{i}@example.com")).to_string(),
            ))
            .expect("request");
        let (status, _, bytes) = app.send(request).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert!(!first_code(&json_of(&bytes)).is_empty());
    }
    assert_eq!(app.statements(), statements, "the database was not touched");
    assert_eq!(app.count_rows("users").await, 0);
}

#[tokio::test]
async fn get_runs_queries_but_not_mutations() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let request = Request::get(format!("/graphql?query={}", url_encode("{me{id}}")))
        .header(header::AUTHORIZATION, format!("Bearer {}", ann.token))
        .body(Body::empty())
        .expect("request");
    let (status, _, bytes) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let body = json_of(&bytes);
    assert_eq!(body["data"]["me"]["id"], ann.id.as_str(), "{body:#}");

    let (status, _, bytes) = get(&app, &format!("/graphql?query={}", url_encode("{me{id}}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(json_of(&bytes)["data"]["me"].is_null());

    let statements = app.statements();
    let mutation = "mutation { register(input: {email: \"eve@example.com\", password: \"correct horse battery\", displayName: \"Eve\"}) { token } }";
    let (status, headers, bytes) =
        get(&app, &format!("/graphql?query={}", url_encode(mutation))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers.get(header::ALLOW).is_some());
    assert!(!first_code(&json_of(&bytes)).is_empty());
    assert_eq!(app.statements(), statements, "the database was not touched");
    assert_eq!(app.count_rows("users").await, 1);
}

#[tokio::test]
async fn batches_are_bounded() {
    let app = TestApp::spawn().await;
    let eleven: Vec<Value> = (0..11)
        .map(|i| register_body(&format!("eve{i}@example.com")))
        .collect();
    let statements = app.statements();
    let res = app.post_json(None, Value::Array(eleven)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{:#}", res.body);
    assert_eq!(res.code(), "BAD_USER_INPUT");
    assert_eq!(app.statements(), statements, "the database was not touched");
    assert_eq!(app.count_rows("users").await, 0);

    let two = json!([{"query": "{ me { id } }"}, {"query": "{ __typename }"}]);
    let res = app.post_json(None, two).await;
    assert_eq!(res.status, StatusCode::OK);
    let responses = res.body.as_array().expect("an array of responses");
    assert_eq!(responses.len(), 2);
    assert!(responses[0]["data"]["me"].is_null());
    assert_eq!(responses[1]["data"]["__typename"], "Query");
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused_unexecuted() {
    let app = TestApp::spawn().await;
    let mut body = register_body("eve@example.com");
    body["variables"]["padding"] = Value::String("x".repeat(1024 * 1024 + 1));
    let bytes = body.to_string();
    let statements = app.statements();
    // With a Content-Length (what browsers and most clients send) and without one (chunked).
    for with_length in [true, false] {
        let mut request =
            Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
        if with_length {
            request = request.header(header::CONTENT_LENGTH, bytes.len());
        }
        let (status, _, response) = app
            .send(request.body(Body::from(bytes.clone())).expect("request"))
            .await;
        assert!(
            status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
            "{status}: {}",
            String::from_utf8_lossy(&response)
        );
        if with_length {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    assert_eq!(app.statements(), statements, "the database was not touched");
    assert_eq!(app.count_rows("users").await, 0);
}

/// `me { memberships { nodes { organization { members { nodes { user { … } } } } } } }`, `rounds`
/// times: depth 1 + 6 × rounds + 1.
fn deep_query(rounds: usize) -> String {
    let open = "memberships { nodes { organization { members { nodes { user { ";
    let close = "} } } } } } ";
    format!(
        "{{ me {{ {} id {}}} }}",
        open.repeat(rounds),
        close.repeat(rounds)
    )
}

#[tokio::test]
async fn depth_is_limited_but_the_standard_introspection_query_is_answered() {
    let app = TestApp::spawn().await;
    let ann = app.user("ann").await;
    let res = app.gql(Some(&ann.token), &deep_query(2), json!({})).await;
    assert_eq!(res.code(), "QUERY_TOO_COMPLEX", "{:#}", res.body);
    // One round (depth 8) is fine.
    let res = app.gql(Some(&ann.token), &deep_query(1), json!({})).await;
    assert_eq!(res.data()["me"]["memberships"]["nodes"], json!([]));

    for token in [None, Some(ann.token.as_str())] {
        let res = app.gql(token, INTROSPECTION_QUERY, json!({})).await;
        let schema = &res.data()["__schema"];
        assert_eq!(schema["queryType"]["name"], "Query");
        let types = schema["types"].as_array().expect("types");
        assert!(types.iter().any(|t| t["name"] == "User"));
    }
    // Also with the operation name GraphiQL sends.
    let res = app
        .post_json(
            None,
            json!({"query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery"}),
        )
        .await;
    assert_eq!(res.data()["__schema"]["mutationType"]["name"], "Mutation");
}

#[tokio::test]
async fn complexity_and_aliases_are_limited() {
    let app = TestApp::spawn_with(|c| c.max_complexity = 10).await;
    let ann = app.user("ann").await;
    let res = app
        .gql(Some(&ann.token), "{ me { id email } }", json!({}))
        .await;
    assert_eq!(res.data()["me"]["email"], ann.email.as_str());
    let wide = "{ me { id email displayName isActive isSuperadmin timezone locale lastLoginAt createdAt } organizations { totalCount } }";
    let res = app.gql(Some(&ann.token), wide, json!({})).await;
    assert_eq!(res.code(), "QUERY_TOO_COMPLEX", "{:#}", res.body);

    let app = TestApp::spawn().await;
    let max = app.app.config().max_aliases;
    let aliased = |n: usize| {
        let fields: String = (0..n).map(|i| format!("a{i}: __typename ")).collect();
        format!("{{ {fields} }}")
    };
    let res = app.gql(None, &aliased(max), json!({})).await;
    assert_eq!(res.data()["a0"], "Query");
    let res = app.gql(None, &aliased(max + 1), json!({})).await;
    assert_eq!(res.code(), "QUERY_TOO_COMPLEX", "{:#}", res.body);
    // Aliases inside fragments count too.
    let fields: String = (0..=max).map(|i| format!("a{i}: __typename ")).collect();
    let query = format!("query {{ ...F }} fragment F on Query {{ {fields} }}");
    let res = app.gql(None, &query, json!({})).await;
    assert_eq!(res.code(), "QUERY_TOO_COMPLEX", "{:#}", res.body);
}

#[tokio::test]
async fn introspection_can_be_switched_off_with_suggestions() {
    // A typo close enough for async-graphql to suggest (`mee` is not: its threshold is 1).
    let typo = "{ organizatons { totalCount } }";
    let on = TestApp::spawn().await;
    let res = on.gql(None, typo, json!({})).await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    let message = res.errors()[0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Did you mean"), "{message}");

    let off = TestApp::spawn_with(|c| c.introspection = false).await;
    // async-graphql answers disabled introspection with `null` (no error): either way, nothing
    // of the schema comes back.
    for query in [
        "{ __schema { types { name } } }",
        INTROSPECTION_QUERY,
        "{ __type(name: \"User\") { name fields { name } } }",
    ] {
        let res = off.gql(None, query, json!({})).await;
        let data = &res.body["data"];
        assert!(
            data.is_null() || (data["__schema"].is_null() && data["__type"].is_null()),
            "{query}: {:#}",
            res.body
        );
        assert!(
            !res.body.to_string().contains("RegisterInput"),
            "{:#}",
            res.body
        );
        for error in res.errors() {
            assert!(error["extensions"]["code"].is_string(), "{:#}", res.body);
        }
    }
    let res = off.gql(None, typo, json!({})).await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    let message = res.errors()[0]["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("Did you mean"), "{message}");
    assert!(!message.contains("\"organizations\""), "{message}");
}

#[tokio::test]
async fn every_error_carries_a_code() {
    let app = TestApp::spawn().await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { token } }";
    let login = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";
    let cases: Vec<(&str, Value)> = vec![
        ("{ me { id ", json!({})),
        ("{ nope }", json!({})),
        ("{ me { nope } }", json!({})),
        ("query($id: ID!) { node(id: $id) { id } }", json!({})),
        (register, json!({"input": "not an object"})),
        (register, json!({"input": {"email": "a@example.com"}})),
        (login, json!({"email": 5, "password": "x"})),
        ("query A { me { id } } query B { me { id } }", json!({})),
        ("subscription { nope }", json!({})),
    ];
    for (query, variables) in cases {
        let res = app.gql(None, query, variables.clone()).await;
        let errors = res.errors();
        assert!(!errors.is_empty(), "{query}: {:#}", res.body);
        for error in &errors {
            assert_eq!(
                error["extensions"]["code"], "BAD_USER_INPUT",
                "{query} {variables}: {:#}",
                res.body
            );
        }
    }
    // Not even a GraphQL request.
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    let (status, _, bytes) = app.send(request).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(first_code(&json_of(&bytes)), "BAD_USER_INPUT");
    // A GET without `query`: refused, with a code (the status is the server's choice).
    let (status, _, bytes) = get(&app, "/graphql?variables=%7B%7D").await;
    assert!(status.is_success() || status.is_client_error(), "{status}");
    assert_eq!(first_code(&json_of(&bytes)), "BAD_USER_INPUT");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let (status, _, _) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    app.gql(None, "{ __typename }", json!({})).await;
    let (status, headers, bytes) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(text.contains("fv_http_requests_total"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("fv_http_requests_total")
            && l.contains("path=\"/graphql\"")
            && l.contains("method=\"POST\"")),
        "{text}"
    );
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::spawn().await;
    for uri in ["/healthz", "/graphql?query=%7B__typename%7D", "/nope"] {
        let (_, headers, _) = get(&app, uri).await;
        let id = headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{uri}: no x-request-id"))
            .to_str()
            .unwrap();
        assert!(!id.is_empty(), "{uri}");
    }
    let (_, first, _) = get(&app, "/healthz").await;
    let (_, second, _) = get(&app, "/healthz").await;
    assert_ne!(first["x-request-id"], second["x-request-id"]);

    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "client-chosen-42")
        .body(Body::from(json!({"query": "{ __typename }"}).to_string()))
        .expect("request");
    let (status, headers, _) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn graphiql_loads_with_no_network() {
    let app = TestApp::spawn().await;
    let request = Request::get("/graphql")
        .header(
            header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .body(Body::empty())
        .expect("request");
    let (status, headers, bytes) = app.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = String::from_utf8(bytes).expect("utf-8");
    assert!(!html.contains("https://"), "{html}");
    assert!(!html.contains("http://"), "{html}");
    assert!(
        html.contains("/graphql/ws"),
        "the subscription endpoint is configured"
    );

    let assets: Vec<&str> = html
        .match_indices("\"/graphql/assets/")
        .map(|(start, _)| {
            let rest = &html[start + 1..];
            &rest[..rest.find('"').expect("closing quote")]
        })
        .collect();
    assert!(assets.len() >= 5, "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".js")));
    assert!(assets.iter().any(|a| a.ends_with(".css")));
    for asset in assets {
        let (status, headers, body) = get(&app, asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(!body.is_empty(), "{asset}");
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
        let expected = if asset.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(
            content_type.starts_with(expected),
            "{asset}: {content_type}"
        );
    }
}

#[tokio::test]
async fn an_exhausted_pool_fails_fast_without_detail_while_healthz_answers() {
    let app = TestApp::spawn_with(|c| {
        c.db_pool_size = 1;
        c.db_pool_timeout_secs = 1;
    })
    .await;
    let ann = app.user("ann").await;
    let _held = app.pool.conn().await.unwrap();

    let check = |res: &Gql, started: Instant| {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(res.code(), "UNAVAILABLE", "{:#}", res.body);
        assert_eq!(
            res.errors()[0]["extensions"]["retryAfter"],
            1,
            "{:#}",
            res.body
        );
        let message = res.errors()[0]["message"].as_str().unwrap().to_lowercase();
        for detail in [
            "select",
            "sql",
            "postgres",
            "bb8",
            "pool",
            "diesel",
            "timed out",
        ] {
            assert!(!message.contains(detail), "{message}");
        }
    };
    // Authenticating the token needs the database.
    let started = Instant::now();
    let res = app.gql(Some(&ann.token), "{ me { id } }", json!({})).await;
    check(&res, started);
    // So does an anonymous login.
    let started = Instant::now();
    let res = app
        .gql(
            None,
            "mutation { login(email: \"ann@example.com\", password: \"correct horse battery\") { token } }",
            json!({}),
        )
        .await;
    check(&res, started);

    let started = Instant::now();
    let (status, _, _) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1));
}
