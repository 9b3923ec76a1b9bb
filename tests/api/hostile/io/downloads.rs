//! Downloads are streamed from the store with their length, a chunk at a time.

use axum::{
    body::Body,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use super::{BACKSTOP, team, upload};
use crate::helpers::TestApp;

#[tokio::test]
async fn downloads_stream_in_chunks_with_their_length() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("file://{}", dir.path().display());
    let app = TestApp::spawn_with(|c| c.object_store_url = Some(url)).await;
    let (_, model, owner, analyst) = team(&app, "acme").await;
    // 3 MiB: larger than any chunk a stream hands over, and than the JSON body limit.
    let content: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let file = upload(&app, &analyst, &model, &content).await;

    let request = Request::get(file["downloadUrl"].as_str().expect("url"))
        .header(header::AUTHORIZATION, format!("Bearer {}", owner.token))
        .body(Body::empty())
        .expect("request");
    let response = tokio::time::timeout(BACKSTOP, app.router.clone().oneshot(request))
        .await
        .expect("answered")
        .expect("router");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        content.len().to_string()
    );
    let mut body = response.into_body();
    let (mut frames, mut largest, mut received) = (0usize, 0usize, Vec::new());
    while let Some(frame) = body.frame().await {
        let data = frame
            .expect("frame")
            .into_data()
            .unwrap_or_else(|_| panic!("trailers in a download"));
        frames += 1;
        largest = largest.max(data.len());
        received.extend_from_slice(&data);
    }
    assert_eq!(
        hex::encode(Sha256::digest(&received)),
        hex::encode(Sha256::digest(&content))
    );
    // The whole file is never one buffer: the response hands it over a chunk at a time.
    assert!(frames > 10, "{frames} frames");
    assert!(largest <= 1024 * 1024, "a {largest}-byte frame");
    eprintln!(
        "download of {} bytes: {frames} frames, largest {largest} bytes",
        content.len()
    );
}
