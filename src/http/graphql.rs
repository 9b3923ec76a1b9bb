//! `POST /graphql` and `GET /graphql`: authentication, CSRF rules, the batch limit, the request
//! guard (`guard.rs`), the introspection schema, then execution with per-request data.

use crate::api::errors::{RETRY_AFTER_SECS, codes, report};
use std::{net::SocketAddr, sync::Arc};

use async_graphql::{
    BatchRequest, BatchResponse, Request as GqlRequest, Response as GqlResponse,
    parser::types::{DocumentOperations, OperationType},
};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{REQUEST_ID, graphiql, guard::guard_request, observe, response::graphql_response};
use crate::{
    api::{context::request_data, idle_gate::IdleGate, request_guard::DocumentShape},
    app::App,
    domain::auth::{
        Caller, RequestMeta, Viewer,
        api_keys::{self, API_KEY_PREFIX},
        sessions,
    },
    domain::modelling::evaluation::EvalBudget,
    domain::{CommitLsn, Lsn, Route},
    error::AppError,
};

/// A JSON body in the GraphQL response shape, for errors raised before execution.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut extensions = json!({"code": code});
    if code == codes::UNAVAILABLE {
        // The database or a dependency is busy or unreachable for now (API.md: retry later).
        extensions["retryAfter"] = json!(RETRY_AFTER_SECS);
    }
    (
        status,
        axum::Json(json!({"errors": [{"message": message, "extensions": extensions}]})),
    )
        .into_response()
}

/// The response to a request that failed with `err` before GraphQL ran (see
/// [`crate::api::errors::report`]).
pub(crate) fn reported_response(err: &AppError, during: &'static str) -> Response {
    let reported = report(err, during);
    error_response(reported.status, reported.code, &reported.message)
}

/// The request's metadata: peer address, user agent, request id.
pub(crate) fn request_meta(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted: &[ipnet::IpNet],
) -> RequestMeta {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    RequestMeta {
        ip: super::client_addr::client_ip(peer.map(|p| p.ip()), headers, trusted),
        user_agent: text(header::USER_AGENT).map(|ua| ua.chars().take(512).collect()),
        request_id: text(REQUEST_ID),
    }
}

/// Resolve an `Authorization` value (`Bearer <token>`) to a viewer; absent → anonymous.
pub(crate) async fn authenticate(
    app: &App,
    authorization: Option<&str>,
) -> Result<Viewer, AppError> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Viewer::Anonymous);
    };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(AppError::Unauthenticated(
                "use `Authorization: Bearer <token>`".into(),
            ));
        }
    };
    // The prefix tells the credential kinds apart: one lookup, in the right table.
    if token.starts_with(API_KEY_PREFIX) {
        api_keys::authenticate(app.core(), token).await
    } else {
        sessions::authenticate(app.core(), token).await
    }
}

/// The peer address, when the server was started with connect info (tests calling the router
/// directly have none).
pub(crate) struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The request's caller; an invalid token is a ready response (401, or 503 when the database
/// cannot say).
pub(crate) async fn caller_of(
    app: &App,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Caller, Response> {
    let meta = request_meta(headers, peer, &app.config().trusted_proxies);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authenticate(app, authorization).await {
        Ok(viewer) => Ok(Caller { viewer, meta }),
        Err(err) => Err(reported_response(&err, "authenticating")),
    }
}

/// The header that carries a commit position: in every response whose operations wrote, and
/// back from the client on a read that must see that write.
pub(crate) const LSN_HEADER: &str = "x-fv-lsn";

/// What one HTTP request's reads must see, and the commits its operations make.
pub(crate) struct Freshness {
    /// The client's `x-fv-lsn`, or the caller's own recent write on this instance, whichever is
    /// later.
    floor: Option<Lsn>,
    /// Whose writes these are (a user, or an API key).
    writer: Option<uuid::Uuid>,
    /// The request's commits so far: an operation of a batch sees the ones before it.
    commits: Arc<CommitLsn>,
}

impl Freshness {
    /// Read `x-fv-lsn` (a malformed one is refused: 400) and the caller's recent write.
    #[allow(
        clippy::result_large_err,
        reason = "the refusal is the whole response, returned once per request"
    )]
    pub(crate) fn of(app: &App, headers: &HeaderMap, caller: &Caller) -> Result<Self, Response> {
        Self::read(app, headers, caller).map_err(|()| {
            error_response(
                StatusCode::BAD_REQUEST,
                codes::BAD_USER_INPUT,
                "`x-fv-lsn` must be a position as a response gave it, such as `0/16B3748`",
            )
        })
    }

    fn read(app: &App, headers: &HeaderMap, caller: &Caller) -> Result<Self, ()> {
        let sent = match headers.get(LSN_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| ())?.parse::<Lsn>()?),
        };
        let writer = caller.viewer.writer_id();
        let recent = writer.and_then(|id| app.core().recent_write(id));
        Ok(Self {
            floor: sent.max(recent),
            writer,
            commits: Arc::default(),
        })
    }

    /// The route of the next operation: a query reads from a replica that has replayed
    /// everything this request must see.
    fn route(&self, query: bool) -> Route {
        Route {
            replicas: query,
            floor: self.floor.max(self.commits.get()),
            credential: self.writer,
            commits: self.commits.clone(),
        }
    }

    /// Add `x-fv-lsn` to a response when the request wrote.
    fn stamp(&self, mut response: Response) -> Response {
        if let Some(lsn) = self.commits.get()
            && let Ok(value) = axum::http::HeaderValue::from_str(&lsn.to_string())
        {
            response.headers_mut().insert(LSN_HEADER, value);
        }
        response
    }
}

/// Run one request: the guard first (a refusal is the whole response), then execution on the
/// introspection schema when the operation selects only introspection, else on the full schema.
/// `budget` is the evaluation budget of the HTTP request it belongs to.
async fn execute_one(
    app: &App,
    caller: &Caller,
    mut request: GqlRequest,
    budget: Arc<EvalBudget>,
    freshness: &Freshness,
) -> (GqlResponse, Operation) {
    match guard_request(app, &mut request) {
        Ok(shape) => execute_guarded(app, caller, request, shape, budget, freshness).await,
        Err(error) => (
            GqlResponse::from_errors(vec![error]),
            (Arc::from(observe::UNKNOWN), None),
        ),
    }
}

/// An operation's `operation` label and its name as sent (see `observe.rs`).
type Operation = (Arc<str>, Option<String>);

/// The name of the operation that will run: the one the request names, else the document's
/// only operation's name. `None` when it is anonymous.
fn operation_name(request: &mut GqlRequest) -> Option<String> {
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    match &request.parsed_query().ok()?.operations {
        DocumentOperations::Single(_) => None,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(ToString::to_string)
        }
        DocumentOperations::Multiple(_) => None,
    }
}

/// Execute a request the guard has measured (`shape` is `None` when it did not parse), and
/// record its latency by operation.
async fn execute_guarded(
    app: &App,
    caller: &Caller,
    mut request: GqlRequest,
    shape: Option<DocumentShape>,
    budget: Arc<EvalBudget>,
    freshness: &Freshness,
) -> (GqlResponse, Operation) {
    let started = std::time::Instant::now();
    let kind = match shape.as_ref().and_then(|shape| shape.operation) {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => observe::UNKNOWN,
    };
    let name = operation_name(&mut request);
    let label = if kind == observe::UNKNOWN {
        Arc::from(observe::UNKNOWN)
    } else {
        app.inner.operation_labels.label(name.as_deref())
    };
    let response = execute_shaped(app, caller, request, shape, budget, freshness).await;
    observe::record_operation(&label, kind, started.elapsed());
    (response, (label, name))
}

/// Execute a request the guard has measured.
async fn execute_shaped(
    app: &App,
    caller: &Caller,
    request: GqlRequest,
    shape: Option<DocumentShape>,
    budget: Arc<EvalBudget>,
    freshness: &Freshness,
) -> GqlResponse {
    let gate = Arc::new(IdleGate::default());
    // A document that did not parse, or names no operation the guard could find, is refused by
    // async-graphql anyway: treat it as a mutation (no cache) to be safe.
    let mutation = shape
        .as_ref()
        .and_then(|shape| shape.operation)
        .is_none_or(|op| op == OperationType::Mutation);
    let before = freshness.commits.get();
    let (state, loader) = request_data(
        app.core(),
        caller.clone(),
        Some(&gate),
        budget,
        mutation,
        freshness.route(!mutation),
    );
    let request = request.data(state).data(loader);
    let mut response = match (&app.inner.introspection_schema, shape) {
        (Some(schema), Some(shape)) if shape.introspection_only => {
            gate.run(schema.execute(request.only_introspection())).await
        }
        _ => gate.run(app.schema().execute(request)).await,
    };
    // The commit position of an operation that wrote (with replicas configured), for clients
    // that read each operation's result rather than the response's headers.
    if let Some(lsn) = freshness.commits.get().filter(|lsn| Some(*lsn) != before) {
        response.extensions.insert(
            "lsn".to_owned(),
            async_graphql::Value::String(lsn.to_string()),
        );
    }
    response
}

async fn execute_batch(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    batch: BatchRequest,
) -> Response {
    let freshness = match Freshness::of(app, headers, caller) {
        Ok(freshness) => freshness,
        Err(response) => return response,
    };
    // One budget for the whole HTTP request: batching operations does not multiply it.
    let budget = app.core().eval_budget();
    let mut operations = Vec::new();
    let response = match batch {
        BatchRequest::Single(request) => {
            let (response, operation) = execute_one(app, caller, request, budget, &freshness).await;
            operations.push(operation);
            BatchResponse::Single(response)
        }
        BatchRequest::Batch(requests) => {
            if requests.len() > app.config().max_batch {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    codes::BAD_USER_INPUT,
                    &format!(
                        "too many operations in one batch: at most {}",
                        app.config().max_batch
                    ),
                );
            }
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                let (response, operation) =
                    execute_one(app, caller, request, budget.clone(), &freshness).await;
                operations.push(operation);
                responses.push(response);
            }
            BatchResponse::Batch(responses)
        }
    };
    noted(
        freshness.stamp(graphql_response(headers, response)),
        operations,
    )
}

/// `response` with the note of its operations for the metrics middleware (`observe.rs`).
fn noted(mut response: Response, operations: Vec<Operation>) -> Response {
    if let Some(note) = observe::OperationNote::of(operations) {
        response.extensions_mut().insert(note);
    }
    response
}

/// Whether a POST body may be a GraphQL request. JSON bodies force a CORS preflight from
/// browsers, so a cross-site form cannot forge one; multipart bodies (uploads) must carry a
/// header a form cannot send.
fn csrf_safe(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json")
        || content_type.starts_with("application/graphql-response+json")
    {
        return true;
    }
    content_type.starts_with("multipart/form-data")
        && (headers.contains_key("apollo-require-preflight")
            || headers.contains_key("x-fv-preflight"))
}

/// A JSON body, read whole (`http::body_limit` bounds it) and parsed straight into requests;
/// the bytes are dropped before execution. async-graphql's own reader deserialises its
/// `BatchRequest`, an untagged enum, through serde's buffered `Content`: a second tree of the
/// whole body next to the variables, which made parsing a 10,000-value upsert hold both. The
/// first non-blank byte tells a batch (`[`) from one operation. A body cut off at the limit is
/// 413, anything else that is not a request 400.
async fn receive_json(body: axum::body::Body) -> Result<BatchRequest, StatusCode> {
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|err| {
            let mut source: Option<&dyn std::error::Error> = Some(&err);
            while let Some(e) = source {
                if e.to_string().contains("length limit") {
                    return StatusCode::PAYLOAD_TOO_LARGE;
                }
                source = e.source();
            }
            StatusCode::BAD_REQUEST
        })?;
    parse_batch(&bytes).map_err(|_| StatusCode::BAD_REQUEST)
}

/// One request (a JSON object) or a non-empty batch (an array), as async-graphql accepts them.
pub(crate) fn parse_batch(bytes: &[u8]) -> serde_json::Result<BatchRequest> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let batch: Vec<GqlRequest> = serde_json::from_slice(bytes)?;
        if batch.is_empty() {
            return Err(serde::de::Error::custom("an empty batch"));
        }
        Ok(BatchRequest::Batch(batch))
    } else {
        serde_json::from_slice(bytes).map(BatchRequest::Single)
    }
}

/// `POST /graphql`.
pub(crate) async fn post_graphql(
    State(app): State<App>,
    Peer(peer): Peer,
    request: Request,
) -> Response {
    if !csrf_safe(request.headers()) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::BAD_USER_INPUT,
            "send GraphQL requests as application/json (multipart uploads need an `apollo-require-preflight` or `x-fv-preflight` header)",
        );
    }
    let headers = request.headers().clone();
    let caller = match caller_of(&app, &headers, peer).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    // Uploads: anonymous callers refused before the body is read, one file per request.
    if super::body_limit::is_multipart(&headers) {
        return match super::multipart::receive(&app, &caller, request).await {
            Ok(batch) => execute_batch(&app, &caller, &headers, batch).await,
            Err(response) => response,
        };
    }
    let batch = match receive_json(request.into_body()).await {
        Ok(batch) => batch,
        Err(status) => {
            return error_response(
                status,
                codes::BAD_USER_INPUT,
                "the request body is not a valid GraphQL request",
            );
        }
    };
    execute_batch(&app, &caller, &headers, batch).await
}

/// `GET /graphql`: GraphiQL for browsers, otherwise a query from the URL. Mutations are refused
/// over GET (405): a link or an image tag must never change data.
pub(crate) async fn get_graphql(
    State(app): State<App>,
    Peer(peer): Peer,
    request: Request,
) -> Response {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let query_string = request.uri().query().unwrap_or("").to_owned();
    if wants_html && query_string.is_empty() {
        return graphiql::graphiql_page("/graphql", "/graphql/ws");
    }
    let headers = request.headers().clone();
    drop(request);
    let caller = match caller_of(&app, &headers, peer).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(mut gql_request) = async_graphql::http::parse_query_string(&query_string) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            codes::BAD_USER_INPUT,
            "pass `query` (and optionally `variables`, `operationName`) in the URL",
        );
    };
    let shape = match guard_request(&app, &mut gql_request) {
        Ok(shape) => shape,
        Err(error) => {
            return graphql_response(
                &headers,
                BatchResponse::Single(GqlResponse::from_errors(vec![error])),
            );
        }
    };
    if shape
        .as_ref()
        .and_then(|shape| shape.operation)
        .is_some_and(|op| op != OperationType::Query)
    {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::BAD_USER_INPUT,
            "mutations and subscriptions are not allowed over GET: use POST",
        );
        response.headers_mut().insert(
            header::ALLOW,
            axum::http::HeaderValue::from_static("GET, POST"),
        );
        return response;
    }
    let freshness = match Freshness::of(&app, &headers, &caller) {
        Ok(freshness) => freshness,
        Err(response) => return response,
    };
    let budget = app.core().eval_budget();
    let (response, operation) =
        execute_guarded(&app, &caller, gql_request, shape, budget, &freshness).await;
    noted(
        graphql_response(&headers, BatchResponse::Single(response)),
        vec![operation],
    )
}
