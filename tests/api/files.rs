//! Model files: uploads through real GraphQL multipart requests, versions, the download endpoint
//! and its headers, roles, size limits, the CSRF preflight rule and the local filesystem store.

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    factories::Team,
    helpers::{Gql, TestApp, TestUser},
};

const UPLOAD: &str = "mutation($input: UploadModelFileInput!) { uploadModelFile(input: $input) { id versionNumber fileName contentType sizeBytes sha256 downloadUrl createdAt uploadedBy { displayName } model { name } } }";

const BOUNDARY: &str = "----fv-test-boundary-7MA4YWxkTrZu0gW";

/// One file to upload.
pub(crate) struct Part<'a> {
    pub(crate) name: &'a str,
    pub(crate) content_type: &'a str,
    pub(crate) bytes: &'a [u8],
}

/// A GraphQL multipart request body (the spec's `operations`, `map`, then the file part `0`).
fn multipart_body(operations: &Value, part: &Part<'_>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut text = |s: &str| body.extend_from_slice(s.as_bytes());
    text(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n"
    ));
    text(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n",
        json!({"0": ["variables.input.file"]})
    ));
    text(&format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
        part.name, part.content_type
    ));
    body.extend_from_slice(part.bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// How to send a multipart request.
#[derive(Clone, Copy)]
struct Send {
    preflight: bool,
    content_length: bool,
}

const NORMAL: Send = Send {
    preflight: true,
    content_length: true,
};

async fn post_multipart(
    app: &TestApp,
    token: Option<&str>,
    body: Vec<u8>,
    how: Send,
) -> (StatusCode, Value) {
    let mut request = Request::post("/graphql").header(
        header::CONTENT_TYPE,
        format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    if how.preflight {
        request = request.header("apollo-require-preflight", "true");
    }
    if how.content_length {
        request = request.header(header::CONTENT_LENGTH, body.len());
    }
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let (status, _, bytes) = app
        .send(request.body(Body::from(body)).expect("request"))
        .await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
    (status, body)
}

/// `uploadModelFile` for `model` as `user`.
pub(crate) async fn upload(app: &TestApp, user: &TestUser, model: &str, part: &Part<'_>) -> Gql {
    let operations =
        json!({"query": UPLOAD, "variables": {"input": {"modelId": model, "file": null}}});
    let (status, body) = post_multipart(
        app,
        Some(&user.token),
        multipart_body(&operations, part),
        NORMAL,
    )
    .await;
    Gql { status, body }
}

/// `GET` a download URL with an optional token.
pub(crate) async fn download(
    app: &TestApp,
    token: Option<&str>,
    url: &str,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(url);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    app.send(request.body(Body::empty()).expect("request"))
        .await
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every byte value, a few times: binary content must round-trip untouched.
fn binary_content() -> Vec<u8> {
    (0..=255u8).cycle().take(3000).collect()
}

async fn upload_events(app: &TestApp) -> Vec<Value> {
    app.audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "model_file.upload")
        .map(|r| {
            assert_eq!(r.entity_type, "ModelFile");
            r.new_values.expect("new values")
        })
        .collect()
}

#[tokio::test]
async fn uploads_are_versioned_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team {
        analyst, viewer, ..
    } = team;
    let csv = b"period,revenue\n2026-01-01,100\n";
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "plan.csv",
            content_type: "text/csv",
            bytes: csv,
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    let first = res.data()["uploadModelFile"].clone();
    assert_eq!(first["versionNumber"], 1);
    assert_eq!(first["fileName"], "plan.csv");
    assert_eq!(first["contentType"], "text/csv");
    assert_eq!(first["sizeBytes"], csv.len());
    assert_eq!(first["sha256"], sha256_hex(csv));
    assert_eq!(first["uploadedBy"]["displayName"], "analyst");
    assert_eq!(first["model"]["name"], "Plan");
    assert_eq!(
        first["downloadUrl"],
        format!("/files/{}", first["id"].as_str().unwrap())
    );

    let binary = binary_content();
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "Prévision 2027.xlsx",
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            bytes: &binary,
        },
    )
    .await;
    let second = res.data()["uploadModelFile"].clone();
    assert_eq!(second["versionNumber"], 2);
    assert_eq!(second["fileName"], "Prévision 2027.xlsx");
    assert_eq!(second["sizeBytes"], 3000);
    assert_eq!(second["sha256"], sha256_hex(&binary));

    // Newest first; paging goes on to older versions. Viewers see the history too.
    let list = "query($id: ID!, $after: String) { model(id: $id) { files(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { versionNumber fileName sha256 } } } }";
    let res = app
        .gql(Some(&viewer.token), list, json!({"id": model}))
        .await;
    let files = &res.data()["model"]["files"];
    assert_eq!(files["totalCount"], 2);
    assert_eq!(files["pageInfo"]["hasNextPage"], true);
    assert_eq!(files["nodes"][0]["versionNumber"], 2);
    let after = files["pageInfo"]["endCursor"].clone();
    let res = app
        .gql(
            Some(&viewer.token),
            list,
            json!({"id": model, "after": after}),
        )
        .await;
    let files = &res.data()["model"]["files"];
    assert_eq!(files["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        files["nodes"],
        json!([{"versionNumber": 1, "fileName": "plan.csv", "sha256": sha256_hex(csv)}])
    );

    // A file is a node.
    let res = app
        .gql(
            Some(&viewer.token),
            "query($id: ID!) { node(id: $id) { id ... on ModelFile { versionNumber } } }",
            json!({"id": first["id"]}),
        )
        .await;
    assert_eq!(res.data()["node"]["versionNumber"], 1);

    // One audit event per upload, with what was stored.
    let events = upload_events(&app).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["fileName"], "plan.csv");
    assert_eq!(events[0]["versionNumber"], 1);
    assert_eq!(events[0]["sizeBytes"], csv.len());
    assert_eq!(events[0]["sha256"], sha256_hex(csv));
    assert_eq!(events[1]["versionNumber"], 2);
    assert_eq!(events[1]["sha256"], sha256_hex(&binary));
}

#[tokio::test]
async fn downloads_return_the_same_bytes_with_safe_headers() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team {
        owner,
        analyst,
        viewer,
        ..
    } = team;
    let binary = binary_content();
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "Prévision 2027 (v2).xlsx",
            content_type: "application/vnd.ms-excel",
            bytes: &binary,
        },
    )
    .await;
    let file = res.data()["uploadModelFile"].clone();
    let url = file["downloadUrl"].as_str().unwrap().to_owned();

    for user in [&viewer, &analyst, &owner] {
        let (status, headers, body) = download(&app, Some(&user.token), &url).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, binary, "the bytes round-trip");
        assert_eq!(headers[header::CONTENT_TYPE], "application/vnd.ms-excel");
        assert_eq!(headers[header::CONTENT_LENGTH], "3000");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            "attachment; filename=\"Pr_vision 2027 (v2).xlsx\"; filename*=UTF-8''Pr%C3%A9vision%202027%20%28v2%29.xlsx"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
        assert_eq!(
            headers[header::ETAG],
            format!("\"{}\"", sha256_hex(&binary)).as_str()
        );
    }

    // A platform superadmin who is no member may read it too.
    let root = app.user("root").await;
    app.make_superadmin(&root.email).await;
    let (status, _, body) = download(&app, Some(&root.token), &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, binary);

    // No content type → application/octet-stream.
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "blob",
            content_type: "nonsense",
            bytes: b"x",
        },
    )
    .await;
    let file = res.data()["uploadModelFile"].clone();
    assert_eq!(file["contentType"], "application/octet-stream");
    let (_, headers, _) = download(
        &app,
        Some(&viewer.token),
        file["downloadUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
}

#[tokio::test]
async fn viewers_download_but_cannot_upload_and_strangers_see_nothing() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team {
        owner,
        analyst,
        viewer,
        ..
    } = team;
    let part = Part {
        name: "plan.csv",
        content_type: "text/csv",
        bytes: b"a,b\n1,2\n",
    };
    let url = upload(&app, &analyst, &model, &part).await.data()["uploadModelFile"]["downloadUrl"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = upload(&app, &viewer, &model, &part).await;
    assert_eq!(res.code(), "FORBIDDEN");
    let stranger = app.user("stranger").await;
    let res = upload(&app, &stranger, &model, &part).await;
    assert_eq!(res.code(), "NOT_FOUND");
    assert_eq!(
        app.count_rows("model_files").await,
        1,
        "refused uploads store nothing"
    );
    assert_eq!(upload_events(&app).await.len(), 1);

    // A stranger cannot tell an existing file from a missing one.
    let (status, _, body) = download(&app, Some(&stranger.token), &url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = download(&app, Some(&stranger.token), "/files/bm9wZQ").await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    assert_eq!(
        body, missing.2,
        "the same answer for a file that exists and one that does not"
    );
    let res = app
        .gql(
            Some(&stranger.token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({"id": url.trim_start_matches("/files/")}),
        )
        .await;
    assert_eq!(res.data()["node"], Value::Null);

    // Without a valid token: 401, whatever the file.
    for token in [None, Some("not-a-token")] {
        let (status, headers, _) = download(&app, token, &url).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        if token.is_none() {
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
    let operations =
        json!({"query": UPLOAD, "variables": {"input": {"modelId": model, "file": null}}});
    let (_, body) = post_multipart(&app, None, multipart_body(&operations, &part), NORMAL).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    // Deleting the model hides its files.
    let res = app
        .gql(
            Some(&owner.token),
            "mutation($id: ID!) { deleteModel(id: $id) }",
            json!({"id": model}),
        )
        .await;
    assert_eq!(res.data()["deleteModel"], true);
    let (status, _, _) = download(&app, Some(&owner.token), &url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn files_over_the_limit_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|c| {
        c.max_upload_bytes = 1024;
        c.object_store_url = Some("memory://".into());
    })
    .await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team { analyst, .. } = team;
    let too_big = vec![b'x'; 1025];
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "big.csv",
            content_type: "text/csv",
            bytes: &too_big,
        },
    )
    .await;
    assert_eq!(res.code(), "BAD_USER_INPUT");
    assert_eq!(res.field().as_deref(), Some("input.file"));
    let message = res.errors()[0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("1 KiB"), "{message}");
    assert_eq!(app.count_rows("model_files").await, 0);
    assert!(upload_events(&app).await.is_empty());

    // Exactly at the limit is fine.
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "ok.csv",
            content_type: "text/csv",
            bytes: &too_big[..1024],
        },
    )
    .await;
    assert_eq!(res.data()["uploadModelFile"]["sizeBytes"], 1024);

    // Far past the limit (file + the JSON allowance) the body is not even read: 413, declared
    // or chunked.
    let huge = vec![b'x'; 1024 + 1024 * 1024 + 1];
    let operations =
        json!({"query": UPLOAD, "variables": {"input": {"modelId": model, "file": null}}});
    let body = multipart_body(
        &operations,
        &Part {
            name: "huge.csv",
            content_type: "text/csv",
            bytes: &huge,
        },
    );
    for content_length in [true, false] {
        let (status, response) = post_multipart(
            &app,
            Some(&analyst.token),
            body.clone(),
            Send {
                preflight: true,
                content_length,
            },
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{response}");
    }
    assert_eq!(app.count_rows("model_files").await, 1);
    assert_eq!(upload_events(&app).await.len(), 1);
}

#[tokio::test]
async fn uploads_may_exceed_the_json_body_limit_but_json_may_not() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team { analyst, .. } = team;
    // 2 MiB: over FV_MAX_BODY_BYTES (1 MiB), under FV_MAX_UPLOAD_BYTES (50 MiB).
    let big: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let res = upload(
        &app,
        &analyst,
        &model,
        &Part {
            name: "big.bin",
            content_type: "application/octet-stream",
            bytes: &big,
        },
    )
    .await;
    assert_eq!(res.data()["uploadModelFile"]["sha256"], sha256_hex(&big));

    let padding = "x".repeat(2 * 1024 * 1024);
    let body = json!({"query": "{ __typename }", "variables": {"padding": padding}}).to_string();
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("request");
    let (status, _, _) = app.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn multipart_without_the_preflight_header_is_refused() {
    let app = TestApp::spawn().await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team { analyst, .. } = team;
    let operations =
        json!({"query": UPLOAD, "variables": {"input": {"modelId": model, "file": null}}});
    let body = multipart_body(
        &operations,
        &Part {
            name: "plan.csv",
            content_type: "text/csv",
            bytes: b"a\n",
        },
    );
    let (status, response) = post_multipart(
        &app,
        Some(&analyst.token),
        body,
        Send {
            preflight: false,
            content_length: true,
        },
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{response}");
    assert_eq!(app.count_rows("model_files").await, 0);
    assert!(upload_events(&app).await.is_empty());
}

#[tokio::test]
async fn the_local_filesystem_store_keeps_files_under_the_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(|c| {
        c.data_dir = data_dir;
        c.object_store_url = None;
    })
    .await;
    let team = Team::new(&app).await;
    let model = team.plan(&app).await;
    let Team {
        analyst, viewer, ..
    } = team;
    let binary = binary_content();
    let part = Part {
        name: "plan.xlsx",
        content_type: "application/vnd.ms-excel",
        bytes: &binary,
    };
    let file = upload(&app, &analyst, &model, &part).await.data()["uploadModelFile"].clone();
    let key = app
        .sql_texts("SELECT storage_key AS t FROM model_files")
        .await
        .remove(0);
    assert!(key.starts_with("models/"), "{key}");
    let on_disk = std::fs::read(dir.path().join("files").join(&key)).expect("the stored file");
    assert_eq!(on_disk, binary);
    let (status, _, body) = download(
        &app,
        Some(&viewer.token),
        file["downloadUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, binary);

    // When the row cannot be committed the object written before it is removed again.
    app.sql_exec(
        "CREATE FUNCTION fv_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
    )
    .await;
    app.sql_exec(
        "CREATE TRIGGER fv_test_refuse BEFORE INSERT ON model_files FOR EACH ROW EXECUTE FUNCTION fv_test_refuse()",
    )
    .await;
    let res = upload(&app, &analyst, &model, &part).await;
    assert_eq!(res.code(), "INTERNAL");
    let model_dir = dir
        .path()
        .join("files")
        .join(key.rsplit_once('/').unwrap().0);
    let left: Vec<_> = std::fs::read_dir(&model_dir)
        .expect("model dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the committed file remains: {left:?}");
    assert_eq!(upload_events(&app).await.len(), 1);
}
