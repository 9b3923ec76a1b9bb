//! Uploads: anonymous multipart refused before a byte of the body is read, exactly one file per
//! request, and the object written before the transaction and removed when it fails.

use axum::{body::Body, http::StatusCode};
use serde_json::json;
use tower::ServiceExt;

use super::{
    BACKSTOP, Polled, multipart_head, multipart_request, operations, send, stored_objects, team,
    upload_body,
};
use crate::helpers::TestApp;

const CHUNK: usize = 64 * 1024;
/// What a refused request may have read past its head: a few chunks of read-ahead, against the
/// 51 MiB the body limit would let through.
const READ_AHEAD: usize = 8 * CHUNK;

#[tokio::test]
async fn anonymous_or_invalid_multipart_is_refused_before_its_body_is_read() {
    let app = TestApp::spawn().await;
    let (_, model, _, analyst) = team(&app, "acme").await;
    let head = multipart_head(
        &operations(&model),
        &json!({"0": ["variables.input.file"]}),
        &["0"],
    );
    for token in [None, Some("not-a-token"), Some("fvk_not-a-key")] {
        // A body that never ends: had the server read it, it would not answer at all.
        let polled = Polled::default();
        let res = send(
            &app,
            multipart_request(token, polled.endless(head.clone(), CHUNK)),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{token:?}: {:#}",
            res.body
        );
        assert_eq!(res.code(), "UNAUTHENTICATED");
        assert_eq!(polled.bytes(), 0, "{token:?}: the body was read");
    }
    // The counter counts: a signed-in caller's upload is read, whole.
    let polled = Polled::default();
    let body = upload_body(&model, b"a,b\n1,2\n");
    let len = body.len();
    let res = send(
        &app,
        multipart_request(Some(&analyst.token), polled.whole(body)),
    )
    .await;
    assert_eq!(res.data()["uploadModelFile"]["sizeBytes"], 8);
    assert_eq!(polled.bytes(), len);
}

#[tokio::test]
async fn a_multipart_request_carries_exactly_one_file() {
    let app = TestApp::spawn().await;
    let (_, model, _, analyst) = team(&app, "acme").await;
    let ops = operations(&model);
    let token = Some(analyst.token.as_str());

    // A map naming two files, two paths for one file, or none: refused before any file part.
    for map in [
        json!({"0": ["variables.input.file"], "1": ["variables.input.file"]}),
        json!({"0": ["variables.input.file", "variables.input.file"]}),
        json!({}),
    ] {
        let polled = Polled::default();
        let head = multipart_head(&ops, &map, &["0"]);
        let head_len = head.len();
        let res = send(&app, multipart_request(token, polled.endless(head, CHUNK))).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{map}: {:#}", res.body);
        assert_eq!(res.code(), "BAD_USER_INPUT", "{map}");
        eprintln!("map {map}: refused after {} bytes", polled.bytes());
        assert!(
            polled.bytes() <= head_len + READ_AHEAD,
            "{map}: {} bytes read",
            polled.bytes()
        );
    }

    // A second file part after a valid map: refused when its headers arrive, not spooled.
    let polled = Polled::default();
    let head = multipart_head(&ops, &json!({"0": ["variables.input.file"]}), &["0", "1"]);
    let head_len = head.len();
    let res = send(&app, multipart_request(token, polled.endless(head, CHUNK))).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{:#}", res.body);
    assert_eq!(res.code(), "BAD_USER_INPUT");
    eprintln!("second file part: refused after {} bytes", polled.bytes());
    assert!(
        polled.bytes() <= head_len + READ_AHEAD,
        "{} bytes read",
        polled.bytes()
    );
    assert_eq!(app.count_rows("model_files").await, 0);
    let uploads = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "model_file.upload")
        .count();
    assert_eq!(uploads, 0);
}

#[tokio::test]
async fn the_object_is_written_before_the_transaction_and_removed_when_it_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}", dir.path().display());
    let app = TestApp::spawn_with(|c| c.object_store_url = Some(url)).await;
    let (_, model, _, analyst) = team(&app, "acme").await;

    // Someone else holds the model's row lock (and is deleting it).
    let mut blocker = app.db.superuser_conn().await;
    {
        use diesel_async::SimpleAsyncConnection;
        blocker
            .batch_execute(
                "BEGIN; UPDATE financial_models SET deleted_at = now() WHERE name = 'Plan'",
            )
            .await
            .expect("lock the model");
    }
    let request = multipart_request(
        Some(&analyst.token),
        Body::from(upload_body(&model, b"a,b\n1,2\n")),
    );
    let router = app.router.clone();
    let pending = tokio::spawn(async move { router.oneshot(request).await });

    // The object lands while the transaction still waits for the lock: the store was written
    // first, holding neither a connection nor the lock.
    let deadline = tokio::time::Instant::now() + BACKSTOP;
    while stored_objects(dir.path()).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no object was written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !pending.is_finished(),
        "the upload did not wait for the lock"
    );

    // The model is gone when the lock is released: the transaction fails, the object goes.
    {
        use diesel_async::SimpleAsyncConnection;
        blocker.batch_execute("COMMIT").await.expect("commit");
    }
    let response = tokio::time::timeout(BACKSTOP, pending)
        .await
        .expect("answered")
        .expect("task")
        .expect("router");
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body:#}"
    );
    assert_eq!(stored_objects(dir.path()), Vec::<std::path::PathBuf>::new());
    assert_eq!(app.count_rows("model_files").await, 0);
}
