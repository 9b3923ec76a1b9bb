//! `finvision backup` / `restore`: demo data, an uploaded file and the audit trail go into one
//! archive (real `pg_dump`), come back into a fresh database and file store (real
//! `pg_restore`), and an app over the copy answers exactly as the original did.

use std::path::Path;

use finvision::{
    backup::{self, Target},
    domain::storage::FileStore,
};
use serde_json::{Value, json};

use crate::{
    files::{Part, download, upload},
    helpers::{TestApp, TestDb},
};

/// Everything the owner can see, in a stable order.
const EVERYTHING: &str = r#"query($org: ID!) {
  me { email displayName }
  organization(slug: "acme") { name slug members { totalCount nodes { role user { email displayName } } }
    models(orderBy: {field: NAME}) { nodes { name currency periods
      files { totalCount nodes { id versionNumber fileName sha256 sizeBytes downloadUrl } }
      scenarios { nodes { name kind series { metric { key } points { period value } } } } } } }
  auditEvents(organizationId: $org, first: 100) { totalCount nodes { sequence action entityType oldValues newValues } }
  verifyAuditChain(organizationId: $org) { valid eventsChecked firstBrokenSequence }
}"#;

fn file_store(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

async fn everything(app: &TestApp, token: &str, org: &str) -> Value {
    let res = app.gql(Some(token), EVERYTHING, json!({"org": org})).await;
    assert!(res.body["errors"].is_null(), "{:#}", res.body);
    res.body["data"].clone()
}

#[tokio::test]
async fn a_backup_restored_elsewhere_answers_like_the_original() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let (files_a, files_b) = (dirs.path().join("a"), dirs.path().join("b"));
    let original = TestApp::spawn_with(|c| c.object_store_url = Some(file_store(&files_a))).await;
    let accounts = finvision::domain::seed::seed_demo(original.app.core())
        .await
        .expect("seed");
    let owner = accounts
        .iter()
        .find(|a| a.email.starts_with("owner"))
        .unwrap();
    let res = original
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": owner.email, "p": owner.password}),
        )
        .await;
    let token = res.data()["login"]["token"].as_str().unwrap().to_owned();
    let ids = original
        .gql(
            Some(&token),
            r#"{ organization(slug: "acme") { id models(orderBy: {field: NAME}) { nodes { id } } } }"#,
            json!({}),
        )
        .await;
    let org = ids.data()["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = ids.data()["organization"]["models"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let uploaded = upload(
        &original,
        &crate::helpers::TestUser {
            id: String::new(),
            email: owner.email.clone(),
            token: token.clone(),
        },
        &model,
        &Part {
            name: "plan.xlsx",
            content_type: "application/octet-stream",
            bytes: &bytes,
        },
    )
    .await;
    let download_url = uploaded.data()["uploadModelFile"]["downloadUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = everything(&original, &token, &org).await;
    assert_eq!(before["verifyAuditChain"]["valid"], true);
    assert!(before["auditEvents"]["totalCount"].as_i64().unwrap() > 5);

    // Back up with the CLI's own function: real pg_dump.
    let archive = dirs.path().join("finvision.backup");
    let store_a = FileStore::open(original.app.config()).expect("store");
    let manifest = backup::backup(
        &Target {
            database_url: &original.db.url,
            bin_dir: None,
            files: &store_a,
        },
        &archive,
    )
    .await
    .expect("backup");
    assert_eq!(manifest.file_count(), 1);
    assert_eq!(manifest.parts[0].path, backup::DATABASE_DUMP);

    // Restore into a fresh, empty database and an empty file directory.
    let fresh = TestDb::empty().await;
    let mut restored_config = finvision::config::Config::for_database(&fresh.url);
    restored_config.object_store_url = Some(file_store(&files_b));
    let store_b = FileStore::open(&restored_config).expect("store");
    let target = Target {
        database_url: &fresh.url,
        bin_dir: None,
        files: &store_b,
    };
    backup::restore(&target, &archive, false)
        .await
        .expect("restore");
    // A second restore into what is no longer empty is refused.
    let refused = backup::restore(&target, &archive, false)
        .await
        .expect_err("not empty");
    assert!(refused.to_string().contains("not empty"), "{refused:#}");

    let restored =
        TestApp::spawn_on(fresh, |c| c.object_store_url = Some(file_store(&files_b))).await;
    let after = everything(&restored, &token, &org).await;
    assert_eq!(before, after, "the restored app answers like the original");
    let (status, _, body) = download(&restored, Some(&token), &download_url).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(body, bytes);
    // The restored database goes on: new events chain onto the restored ones.
    let res = restored
        .gql(
            Some(&token),
            "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
            json!({"input": {"organizationId": org, "name": "After restore", "currency": "EUR",
                   "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}}),
        )
        .await;
    assert!(res.body["errors"].is_null(), "{:#}", res.body);
    let chain = everything(&restored, &token, &org).await["verifyAuditChain"].clone();
    assert_eq!(chain["valid"], true, "{chain}");
}

#[tokio::test]
async fn a_tampered_backup_is_refused_before_anything_is_written() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let original = TestApp::spawn_with(|c| {
        c.object_store_url = Some(file_store(&dirs.path().join("a")));
    })
    .await;
    original.user("ann").await;
    let archive = dirs.path().join("finvision.backup");
    let store = FileStore::open(original.app.config()).expect("store");
    backup::backup(
        &Target {
            database_url: &original.db.url,
            bin_dir: None,
            files: &store,
        },
        &archive,
    )
    .await
    .expect("backup");
    // Flip one byte near the end of the dump (past the manifest, inside database.dump).
    let mut raw = std::fs::read(&archive).unwrap();
    let at = raw
        .windows(5)
        .position(|w| w == b"PGDMP")
        .expect("dump header")
        + 64;
    raw[at] ^= 0xff;
    std::fs::write(&archive, raw).unwrap();

    let fresh = TestDb::empty().await;
    let mut config = finvision::config::Config::for_database(&fresh.url);
    config.object_store_url = Some(file_store(&dirs.path().join("b")));
    let store_b = FileStore::open(&config).expect("store");
    let err = backup::restore(
        &Target {
            database_url: &fresh.url,
            bin_dir: None,
            files: &store_b,
        },
        &archive,
        false,
    )
    .await
    .expect_err("tampered");
    assert!(err.to_string().contains("checksum mismatch"), "{err:#}");
    let mut conn = fresh.superuser_conn().await;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables: N =
        diesel::sql_query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables.n, 0, "nothing restored");
}
