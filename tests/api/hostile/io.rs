//! Hostile input: io. Bounded I/O through the real router: uploads refused before their body is
//! read and limited to one file, downloads streamed, the object store written outside the
//! transaction, request and statement timeouts, the audit stream's keyset pages, and nothing of
//! a soft-deleted organization reachable. Each test measures bytes read, objects left, statements
//! sent or status codes; wall-clock limits are only generous backstops.

mod audit_pages;
mod deleted_org;
mod downloads;
mod timeouts;
mod uploads;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{Request, StatusCode, header},
};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::{
    factories::{ModelBuilder, OrganizationBuilder, UserBuilder},
    helpers::{Gql, TestApp, TestUser},
};

pub const UPLOAD: &str = "mutation($input: UploadModelFileInput!) { uploadModelFile(input: $input) { id sizeBytes sha256 downloadUrl } }";
pub const BOUNDARY: &str = "----fv-io-boundary-3xQ9";
/// Generous: only there so a regression hangs no test run.
pub const BACKSTOP: Duration = Duration::from_secs(20);

/// Bytes a request body handed to the server, counted as the server polls them.
#[derive(Clone, Default)]
pub struct Polled(Arc<AtomicUsize>);

impl Polled {
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// `prefix`, then `chunk` forever: a body that would never end were it read. Between chunks
    /// the stream is briefly not ready, as a socket is: a reader that buffers whatever is ready
    /// (multer does) then reads as it goes, not the whole body at once.
    pub fn endless(&self, prefix: Vec<u8>, chunk: usize) -> Body {
        let counter = self.0.clone();
        let filler = Bytes::from(vec![b'x'; chunk]);
        let stream = futures_util::stream::unfold(Some(Bytes::from(prefix)), move |first| {
            let counter = counter.clone();
            let filler = filler.clone();
            async move {
                tokio::task::yield_now().await;
                let next = first.unwrap_or(filler);
                counter.fetch_add(next.len(), Ordering::SeqCst);
                Some((Ok::<_, std::io::Error>(next), None))
            }
        });
        Body::from_stream(stream)
    }

    /// `body`, counted as it is polled.
    pub fn whole(&self, body: Vec<u8>) -> Body {
        let counter = self.0.clone();
        let stream =
            futures_util::stream::iter(std::iter::once(Bytes::from(body))).map(move |b: Bytes| {
                counter.fetch_add(b.len(), Ordering::SeqCst);
                Ok::<_, std::io::Error>(b)
            });
        Body::from_stream(stream)
    }

    /// `prefix`, then nothing ever again: a client that stalls.
    pub fn stalled(&self, prefix: Vec<u8>) -> Body {
        let counter = self.0.clone();
        let stream = futures_util::stream::iter(std::iter::once(Bytes::from(prefix)))
            .chain(futures_util::stream::pending())
            .map(move |b: Bytes| {
                counter.fetch_add(b.len(), Ordering::SeqCst);
                Ok::<_, std::io::Error>(b)
            });
        Body::from_stream(stream)
    }
}

/// The `operations` of an upload to `model`.
pub fn operations(model: &str) -> Value {
    json!({"query": UPLOAD, "variables": {"input": {"modelId": model, "file": null}}})
}

/// The head of a multipart body: `operations`, `map`, then the headers of each file part named
/// in `files` (the first one's content is `content`; later ones get their headers only, so the
/// caller decides what follows).
pub fn multipart_head(operations: &Value, map: &Value, files: &[&str]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{map}\r\n"
    );
    for (i, name) in files.iter().enumerate() {
        if i > 0 {
            body.push_str("\r\n");
        }
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        ));
        if i + 1 < files.len() {
            body.push_str("a,b\n1,2\n");
        }
    }
    body.into_bytes()
}

/// A complete one-file upload body.
pub fn upload_body(model: &str, content: &[u8]) -> Vec<u8> {
    let mut body = multipart_head(
        &operations(model),
        &json!({"0": ["variables.input.file"]}),
        &["0"],
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A multipart POST to `/graphql` (with the preflight header) carrying `body`.
pub fn multipart_request(token: Option<&str>, body: Body) -> Request<Body> {
    let mut request = Request::post("/graphql")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("apollo-require-preflight", "true");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(body).expect("request")
}

/// Send through the router with the backstop; the response as a [`Gql`].
pub async fn send(app: &TestApp, request: Request<Body>) -> Gql {
    let (status, _, bytes) = tokio::time::timeout(BACKSTOP, app.send(request))
        .await
        .expect("answered within the backstop");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
    Gql { status, body }
}

/// An organization `slug` with its owner, an analyst and one model "Plan"; returns
/// (organization id, model id, owner, analyst).
pub async fn team(app: &TestApp, slug: &str) -> (String, String, TestUser, TestUser) {
    let owner = UserBuilder::new(&format!("{slug}-owner")).build(app).await;
    let analyst = UserBuilder::new(&format!("{slug}-analyst"))
        .build(app)
        .await;
    let org = OrganizationBuilder::new(slug, &owner)
        .member(&analyst, "ANALYST")
        .build(app)
        .await;
    let model = ModelBuilder::new("Plan").build(app, &owner, &org).await.id;
    (org, model, owner, analyst)
}

/// Upload `content` to `model` as `user`; the `uploadModelFile` payload.
pub async fn upload(app: &TestApp, user: &TestUser, model: &str, content: &[u8]) -> Value {
    let res = send(
        app,
        multipart_request(Some(&user.token), Body::from(upload_body(model, content))),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{:#}", res.body);
    res.data()["uploadModelFile"].clone()
}

/// Every regular file under `dir`, recursively (what a `file://` store holds).
pub fn stored_objects(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}
