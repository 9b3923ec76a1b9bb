//! Hostile input: conformance. Refused and failed fields keep their keys (`null` with the error at
//! the path, non-null failures nulling the nearest nullable ancestor), the response's media type
//! and status follow `Accept`, anonymous callers are `UNAUTHENTICATED` for organization-scoped
//! reads, and every API response says `nosniff`.

use std::collections::BTreeSet;

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};

use crate::{
    factories::{ModelBuilder, OrganizationBuilder},
    helpers::{Gql, TestApp, TestUser},
};

/// An owner, a VIEWER member, an organization and one model.
async fn setup(app: &TestApp) -> (TestUser, TestUser, String, String) {
    let owner = app.user("owner").await;
    let viewer = app.user("viewer").await;
    let org = OrganizationBuilder::new("acme", &owner)
        .member(&viewer, "VIEWER")
        .build(app)
        .await;
    let model = ModelBuilder::new("Plan").build(app, &owner, &org).await.id;
    (owner, viewer, org, model)
}

/// The value at `path` in `data`, asserting that every key on the way is present.
#[track_caller]
fn at<'a>(res: &'a Gql, path: &[Value]) -> &'a Value {
    let mut value = &res.body["data"];
    assert!(
        res.body.as_object().is_some_and(|o| o.contains_key("data")),
        "no `data` key: {:#}",
        res.body
    );
    for step in path {
        value = match step {
            Value::String(key) => {
                assert!(
                    value.as_object().is_some_and(|o| o.contains_key(key)),
                    "key {key:?} missing on the way to {path:?}: {:#}",
                    res.body
                );
                &value[key.as_str()]
            }
            Value::Number(i) => &value[i.as_u64().expect("index") as usize],
            _ => unreachable!(),
        };
    }
    value
}

/// Asserts an error with `code` whose path is `path`.
#[track_caller]
fn error_at(res: &Gql, path: &[Value], code: &str) {
    let found = res
        .errors()
        .iter()
        .any(|e| e["path"] == Value::Array(path.to_vec()) && e["extensions"]["code"] == code);
    assert!(found, "no {code} error at {path:?}: {:#}", res.body);
}

fn p(steps: &[&str]) -> Vec<Value> {
    steps
        .iter()
        .map(|s| match s.parse::<u64>() {
            Ok(i) => json!(i),
            Err(_) => json!(s),
        })
        .collect()
}

/// The guarded read fields this file refuses through the API, and the ones no query can reach
/// refused (with why). `every_guarded_read_field_is_covered` keeps the two lists complete.
const COVERED: &[&str] = &[
    "email",
    "lastLoginAt",
    "apiKeys",
    "auditEvents",
    "auditRetention",
    "verifyAuditChain",
    "organization",
    "organizations",
    "model",
    "scenario",
    "node",
    "nodes",
    "exportMyData",
    "search",
    "webhookEndpoints",
];
/// An audit event is visible only to those who may read its private fields: a refusal of these
/// needs a role change between two fields of one response.
const UNREACHABLE: &[&str] = &["oldValues", "newValues", "ipAddress", "userAgent"];

#[tokio::test]
async fn refused_nullable_fields_are_present_as_null_with_their_error() {
    let app = TestApp::spawn().await;
    let (owner, viewer, _org, _model) = setup(&app).await;

    // User.email and User.lastLoginAt of another member, for a VIEWER: null, FORBIDDEN, present.
    let res = app
        .gql(
            Some(&viewer.token),
            "{ organization(slug: \"acme\") { members(first: 10) { nodes { role user { id displayName email lastLoginAt } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let nodes = at(&res, &p(&["organization", "members", "nodes"]))
        .as_array()
        .expect("members")
        .clone();
    let owner_index = nodes
        .iter()
        .position(|n| n["user"]["id"] == owner.id.as_str())
        .expect("owner listed");
    let viewer_index = 1 - owner_index;
    for field in ["email", "lastLoginAt"] {
        let i = owner_index.to_string();
        let path = p(&["organization", "members", "nodes", &i, "user", field]);
        assert_eq!(at(&res, &path), &Value::Null, "{field}");
        error_at(&res, &path, "FORBIDDEN");
    }
    // The viewer's own email is visible in the same response.
    let i = viewer_index.to_string();
    assert_eq!(
        at(
            &res,
            &p(&["organization", "members", "nodes", &i, "user", "email"])
        ),
        &json!(viewer.email)
    );
    assert_eq!(res.errors().len(), 2, "{:#}", res.body);
}

#[tokio::test]
async fn refused_non_null_fields_null_their_nearest_nullable_parent() {
    let app = TestApp::spawn().await;
    let (_owner, viewer, org, model) = setup(&app).await;

    // Organization.apiKeys / auditEvents are non-null connections: the organization goes null.
    for field in ["apiKeys", "auditEvents"] {
        let res = app
            .gql(
                Some(&viewer.token),
                &format!("{{ organization(slug: \"acme\") {{ name {field}(first: 5) {{ totalCount }} }} me {{ id }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(at(&res, &p(&["organization"])), &Value::Null, "{field}");
        error_at(&res, &p(&["organization", field]), "FORBIDDEN");
        // The sibling stands.
        assert_eq!(at(&res, &p(&["me", "id"])), &json!(viewer.id));
    }

    // Organization.auditRetention is non-null too.
    let res = app
        .gql(
            Some(&viewer.token),
            "{ organization(slug: \"acme\") { name auditRetention { months } } me { id } }",
            json!({}),
        )
        .await;
    assert_eq!(at(&res, &p(&["organization"])), &Value::Null);
    error_at(&res, &p(&["organization", "auditRetention"]), "FORBIDDEN");
    assert_eq!(at(&res, &p(&["me", "id"])), &json!(viewer.id));

    // Organization.webhookEndpoints is a non-null list.
    let res = app
        .gql(
            Some(&viewer.token),
            "{ organization(slug: \"acme\") { name webhookEndpoints { id } } me { id } }",
            json!({}),
        )
        .await;
    assert_eq!(at(&res, &p(&["organization"])), &Value::Null);
    error_at(&res, &p(&["organization", "webhookEndpoints"]), "FORBIDDEN");
    assert_eq!(at(&res, &p(&["me", "id"])), &json!(viewer.id));

    // FinancialModel.auditEvents: the model goes null.
    let res = app
        .gql(
            Some(&viewer.token),
            "query($id: ID!) { model(id: $id) { name auditEvents(first: 5) { totalCount } } }",
            json!({"id": model}),
        )
        .await;
    assert_eq!(at(&res, &p(&["model"])), &Value::Null);
    error_at(&res, &p(&["model", "auditEvents"]), "FORBIDDEN");

    // Non-null root fields: `data` itself is null.
    for query in [
        "query($o: ID!) { auditEvents(organizationId: $o, first: 5) { totalCount } }",
        "query($o: ID!) { verifyAuditChain(organizationId: $o) { eventsChecked } }",
    ] {
        let res = app.gql(Some(&viewer.token), query, json!({"o": org})).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body["data"], Value::Null, "{query}: {:#}", res.body);
        assert_eq!(res.code(), "FORBIDDEN", "{query}");
        assert!(res.errors()[0]["path"].is_array(), "{:#}", res.body);
    }
}

#[tokio::test]
async fn anonymous_organization_scoped_reads_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let (_owner, _viewer, org, model) = setup(&app).await;

    // Nullable roots: present as null, UNAUTHENTICATED at their path; `me` stays a plain null.
    let res = app
        .gql(
            None,
            "query($o: ID!, $m: ID!) { me { id } organization(id: $o) { id } bySlug: organization(slug: \"acme\") { id } model(id: $m) { id } scenario(id: $m) { id } node(id: $o) { id } }",
            json!({"o": org, "m": model}),
        )
        .await;
    assert_eq!(at(&res, &p(&["me"])), &Value::Null);
    for field in ["organization", "bySlug", "model", "scenario", "node"] {
        assert_eq!(at(&res, &p(&[field])), &Value::Null, "{field}");
        error_at(&res, &p(&[field]), "UNAUTHENTICATED");
    }
    assert_eq!(res.errors().len(), 5, "{:#}", res.body);

    // Non-null roots: `data` is null.
    for query in [
        "{ organizations { totalCount } }",
        "query($o: ID!) { nodes(ids: [$o]) { id } }",
        "query($o: ID!) { auditEvents(organizationId: $o) { totalCount } }",
        "query($o: ID!) { verifyAuditChain(organizationId: $o) { eventsChecked } }",
        "{ exportMyData { generatedAt } }",
        "query($o: ID!) { search(organizationId: $o, query: \"plan\") { title } }",
    ] {
        let res = app.gql(None, query, json!({"o": org})).await;
        assert_eq!(res.body["data"], Value::Null, "{query}: {:#}", res.body);
        assert_eq!(res.code(), "UNAUTHENTICATED", "{query}");
    }

    // What anonymous callers may do still works: the schema, and signing in.
    let res = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(res.data()["__typename"], "Query");
}

#[tokio::test]
async fn failed_nullable_fields_are_present_as_null() {
    let app = TestApp::spawn().await;
    let (owner, _viewer, _org, _model) = setup(&app).await;
    // A malformed ID fails the field (BAD_USER_INPUT), not the response.
    let res = app
        .gql(
            Some(&owner.token),
            "{ scenario(id: \"not-an-id\") { id } me { id } }",
            json!({}),
        )
        .await;
    assert_eq!(at(&res, &p(&["scenario"])), &Value::Null);
    error_at(&res, &p(&["scenario"]), "BAD_USER_INPUT");
    assert_eq!(at(&res, &p(&["me", "id"])), &json!(owner.id));
}

/// Every field declared with a guard in `src/api/types` and `src/api/query` is refused by a test
/// above or listed as unreachable: a new guarded field must join one list.
#[test]
fn every_guarded_read_field_is_covered() {
    let mut guarded = BTreeSet::new();
    for dir in ["src/api/types", "src/api/query"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
            let mut pending = false;
            for line in text.lines() {
                if line.contains("guard = ") {
                    pending = true;
                }
                if pending && let Some(rest) = line.trim().strip_prefix("async fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    guarded.insert(camel(&name));
                    pending = false;
                }
            }
        }
    }
    assert!(guarded.len() >= 10, "the scan found {guarded:?}");
    let known: BTreeSet<String> = COVERED
        .iter()
        .chain(UNREACHABLE)
        .map(|s| s.to_string())
        .collect();
    let missing: Vec<_> = guarded.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "guarded fields without a refusal test: {missing:?}"
    );
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

async fn post_with_accept(
    app: &TestApp,
    accept: Option<&str>,
    query: &str,
) -> (StatusCode, String, Value) {
    let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let (status, headers, body) = app
        .send(
            request
                .body(Body::from(json!({"query": query}).to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(
        headers
            .get(header::X_CONTENT_TYPE_OPTIONS)
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        serde_json::from_slice(&body).expect("json body"),
    )
}

#[tokio::test]
async fn the_response_follows_accept() {
    let app = TestApp::spawn().await;
    const GRAPHQL: &str = "application/graphql-response+json";

    // A good request: 200 either way, in the media type asked for.
    for (accept, expected) in [
        (Some("application/json"), "application/json"),
        (Some(GRAPHQL), GRAPHQL),
        (
            Some("application/graphql-response+json, application/json;q=0.9"),
            GRAPHQL,
        ),
        (
            Some("application/json, application/graphql-response+json;q=0.5"),
            "application/json",
        ),
        (Some("*/*"), GRAPHQL),
        (None, "application/json"),
    ] {
        let (status, content_type, body) = post_with_accept(&app, accept, "{ __typename }").await;
        assert_eq!(status, StatusCode::OK, "{accept:?}");
        assert_eq!(content_type, expected, "{accept:?}");
        assert_eq!(body["data"]["__typename"], "Query");
    }

    // Parse and validation errors: 400 with the GraphQL media type, 200 for legacy JSON.
    for query in ["{ __typename", "{ noSuchField }"] {
        let (status, content_type, body) = post_with_accept(&app, Some(GRAPHQL), query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(content_type, GRAPHQL);
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let (status, content_type, _) =
            post_with_accept(&app, Some("application/json"), query).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(content_type, "application/json");
    }

    // A field error with data is still 200 under the GraphQL media type.
    let (status, _, body) = post_with_accept(
        &app,
        Some(GRAPHQL),
        "{ me { id } organizations { totalCount } }",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
}

#[tokio::test]
async fn every_api_response_says_nosniff() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/graphql"),
        ("GET", "/files/nothing"),
        ("POST", "/graphql"),
    ] {
        let (_, headers, _) = app
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert_eq!(
            headers
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{method} {path}"
        );
    }
}

#[test]
fn graphiql_keeps_headers_only_when_asked() {
    let boot = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/graphiql/boot.js"),
    )
    .expect("boot.js");
    // GraphiQL persists headers when the prop is true, and offers the switch only when the prop
    // is left undefined: the page must leave it so and show the switch.
    assert!(
        !boot.contains("shouldPersistHeaders"),
        "boot.js sets shouldPersistHeaders"
    );
    assert!(boot.contains("showPersistHeadersSettings: true"));
}
