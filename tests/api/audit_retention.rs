//! Audit retention and archive: `setAuditRetention` (OWNER, at least 12 months, audited), the
//! archive job moving expired months to the object store, `verifyAuditChain` going on from the
//! last archived hash, and archive files verified line by line (and tampering found).

use chrono::{DateTime, Months, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use finvision::{
    db::schema::audit_events,
    domain::audit::{
        archive::{archive_expired, ensure_partitions, month_of, verify_stored_archives},
        archive_file::{archive_line, verify_archive},
        history::AuditEventRow,
    },
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

async fn create_model(app: &TestApp, user: &TestUser, org: &str, name: &str) {
    let res = app
        .gql(
            Some(&user.token),
            "mutation($input: CreateModelInput!) { createModel(input: $input) { id } }",
            json!({"input": {"organizationId": org, "name": name, "currency": "USD", "startPeriod": "2026-01-01", "endPeriod": "2026-12-01"}}),
        )
        .await;
    res.data();
}

async fn set_retention(
    app: &TestApp,
    user: &TestUser,
    org: &str,
    months: Value,
) -> crate::helpers::Gql {
    app.gql(
        Some(&user.token),
        "mutation($org: ID!, $months: Int) { setAuditRetention(organizationId: $org, months: $months) { organization { slug } months archivedThrough archivedEvents } }",
        json!({"org": org, "months": months}),
    )
    .await
}

async fn retention(app: &TestApp, user: &TestUser, org: &str) -> crate::helpers::Gql {
    app.gql(
        Some(&user.token),
        "query($org: ID!) { node(id: $org) { ... on Organization { auditRetention { months archivedThrough archivedEvents } } } }",
        json!({"org": org}),
    )
    .await
}

async fn verify(app: &TestApp, user: &TestUser, org: &str) -> Value {
    app.gql(
        Some(&user.token),
        "query($org: ID!) { verifyAuditChain(organizationId: $org) { eventsChecked valid firstBrokenSequence } }",
        json!({"org": org}),
    )
    .await
    .data()["verifyAuditChain"]
        .clone()
}

async fn org_uuid(app: &TestApp, slug: &str) -> Uuid {
    app.sql_texts(&format!(
        "SELECT id::text AS t FROM organizations WHERE slug = '{slug}'"
    ))
    .await[0]
        .parse()
        .unwrap()
}

async fn org_rows(app: &TestApp, org: Uuid) -> Vec<AuditEventRow> {
    let mut conn = app.db.superuser_conn().await;
    audit_events::table
        .filter(audit_events::organization_id.eq(org))
        .order(audit_events::id.asc())
        .select(AuditEventRow::as_select())
        .load(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_archived_month_leaves_the_table_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let app = TestApp::spawn_with(|config| config.object_store_url = Some(store)).await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let other = app.user("other").await;
    let other_org = app.organization(&other, "globex").await;
    create_model(&app, &owner, &org, "Plan").await;
    create_model(&app, &other, &other_org, "Theirs").await;
    create_model(&app, &owner, &org, "Budget ü \"q\" 🚀").await;
    let set = set_retention(&app, &owner, &org, json!(12)).await;
    assert_eq!(
        set.data()["setAuditRetention"],
        json!({"organization": {"slug": "acme"}, "months": 12, "archivedThrough": null, "archivedEvents": 0})
    );
    let org_id = org_uuid(&app, "acme").await;
    let before = org_rows(&app, org_id).await;
    assert_eq!(before.len(), 4, "create, two models, the retention change");
    let month = month_of(before[0].created_at);
    assert_eq!(month_of(before[3].created_at), month);

    // Nothing is past a 12-month retention today.
    let core = app.app.core();
    assert_eq!(archive_expired(core, Utc::now()).await.unwrap().events, 0);
    // Thirteen months on, the month is past it; the other organization keeps everything.
    let later: DateTime<Utc> = Utc::now() + Months::new(13);
    assert!(ensure_partitions(core, later).await.unwrap() > 0);
    let run = archive_expired(core, later).await.unwrap();
    assert_eq!(run.months, vec![(org_id, month)]);
    assert_eq!(run.events, 4);
    assert!(org_rows(&app, org_id).await.is_empty());
    let other_id = org_uuid(&app, "globex").await;
    assert_eq!(org_rows(&app, other_id).await.len(), 2);
    // A second run finds nothing more to do.
    assert_eq!(archive_expired(core, later).await.unwrap().events, 0);

    // The file holds the rows read before archiving, field by field and line by line.
    let path = dir.path().join(format!(
        "audit-archive/{org_id}/{}.jsonl",
        month.format("%Y-%m")
    ));
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), before.len());
    for (line, row) in lines.iter().zip(&before) {
        assert_eq!(*line, archive_line(row));
        let parsed: Value = serde_json::from_str(line).unwrap();
        assert_eq!(parsed["sequence"], row.id);
        assert_eq!(parsed["hash"], hex::encode(&row.hash));
        assert_eq!(
            parsed["prev_hash"],
            json!(row.prev_hash.as_deref().map(hex::encode))
        );
        assert_eq!(parsed["action"], row.action);
        assert_eq!(parsed["entity_type"], row.entity_type);
        assert_eq!(parsed["organization_id"], org_id.to_string());
        assert_eq!(parsed["old_values"], json!(row.old_values));
        assert_eq!(parsed["new_values"], json!(row.new_values));
        assert_eq!(
            parsed["created_at"],
            row.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
    }
    let report = verify_archive(&bytes, Some(None));
    assert!(report.valid, "{report:?}");
    assert_eq!(report.last_hash.as_deref(), Some(before[3].hash.as_slice()));

    // The API: the archive is shown, the chain verifies from the last archived hash, and the
    // next event links to it.
    let shown = retention(&app, &owner, &org).await;
    let shown = &shown.data()["node"]["auditRetention"];
    assert_eq!(shown["months"], 12);
    assert_eq!(shown["archivedEvents"], 4);
    assert!(
        shown["archivedThrough"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}T00:00:00", month + Months::new(1)))
    );
    assert_eq!(
        verify(&app, &owner, &org).await,
        json!({"eventsChecked": 0, "valid": true, "firstBrokenSequence": null})
    );
    create_model(&app, &owner, &org, "After").await;
    let after = org_rows(&app, org_id).await;
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].prev_hash.as_deref(),
        Some(before[3].hash.as_slice())
    );
    assert_eq!(
        verify(&app, &owner, &org).await,
        json!({"eventsChecked": 1, "valid": true, "firstBrokenSequence": null})
    );
    let checks = verify_stored_archives(core, org_id).await.unwrap();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].valid);

    // A tampered archive is found: an edited value, then a removed line.
    let edited = text.replacen("Plan", "Plan Z", 1);
    std::fs::write(&path, &edited).unwrap();
    let report = verify_archive(edited.as_bytes(), Some(None));
    assert!(!report.valid);
    assert_eq!(report.first_broken_line, Some(2));
    assert_eq!(report.first_broken_sequence, Some(before[1].id));
    assert!(!verify_stored_archives(core, org_id).await.unwrap()[0].valid);
    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let report = verify_archive(removed.as_bytes(), Some(None));
    assert!(!report.valid);
    assert_eq!(report.first_broken_sequence, Some(before[2].id));
    std::fs::write(&path, &removed).unwrap();
    assert!(!verify_stored_archives(core, org_id).await.unwrap()[0].valid);
}

#[tokio::test]
async fn only_an_owner_sets_a_retention_of_at_least_a_year_and_it_is_audited() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let org = app.organization(&owner, "acme").await;
    let admin = app.user("admin").await;
    let analyst = app.user("analyst").await;
    app.add_member(&owner, &org, &admin, "ADMIN").await;
    app.add_member(&owner, &org, &analyst, "ANALYST").await;
    let events = app.audit_actions().await.len();

    let short = set_retention(&app, &owner, &org, json!(11)).await;
    assert_eq!(short.code(), "BAD_USER_INPUT");
    assert_eq!(short.field().as_deref(), Some("months"));
    let denied = set_retention(&app, &admin, &org, json!(24)).await;
    assert_eq!(denied.code(), "FORBIDDEN");
    assert_eq!(app.audit_actions().await.len(), events, "nothing written");
    let shown = retention(&app, &admin, &org).await;
    assert_eq!(
        shown.data()["node"]["auditRetention"],
        json!({"months": null, "archivedThrough": null, "archivedEvents": 0})
    );
    // ANALYST and below do not see it.
    assert_eq!(retention(&app, &analyst, &org).await.code(), "FORBIDDEN");

    let set = set_retention(&app, &owner, &org, json!(24)).await;
    assert_eq!(set.data()["setAuditRetention"]["months"], 24);
    let rows = app.audit_rows().await;
    let last = rows.last().unwrap();
    assert_eq!(last.action, "organization.audit_retention");
    assert_eq!(last.entity_type, "Organization");
    assert_eq!(last.old_values, Some(json!({"auditRetentionMonths": null})));
    assert_eq!(last.new_values, Some(json!({"auditRetentionMonths": 24})));

    let cleared = set_retention(&app, &owner, &org, Value::Null).await;
    assert_eq!(cleared.data()["setAuditRetention"]["months"], Value::Null);
    assert_eq!(
        app.audit_rows().await.last().unwrap().new_values,
        Some(json!({"auditRetentionMonths": null}))
    );
    assert_eq!(verify(&app, &owner, &org).await["valid"], true);
}

#[tokio::test]
async fn only_the_archive_function_removes_events() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    app.organization(&owner, "acme").await;
    let before = app.audit_actions().await.len();
    // Setting the job's flag is not enough for anyone but the table's owner through the
    // function; and a partition cannot be truncated behind the parent's back.
    let refused = [
        "DELETE FROM audit_events",
        "TRUNCATE audit_events_default",
        "UPDATE audit_events SET action = 'x'",
    ];
    for sql in refused {
        let mut conn = app.db.superuser_conn().await;
        let err = diesel::sql_query(sql).execute(&mut conn).await;
        assert!(err.is_err(), "{sql} was allowed");
    }
    let mut conn = app.db.superuser_conn().await;
    let partitions: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(
        partitions >= 5,
        "the current month, three ahead and the default"
    );
    assert_eq!(app.audit_actions().await.len(), before);
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct SeedEvent {
    organization_id: Option<Uuid>,
    action: String,
    entity_type: String,
    entity_id: Option<Uuid>,
    new_values: Option<Value>,
    created_at: DateTime<Utc>,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
}

/// The archive job over two months of events, with its throughput: 2,000 events in the suite;
/// the README's figure is `FV_ARCHIVE_BENCH_EVENTS=100000 cargo test --release --test api
/// archive_throughput -- --nocapture`.
#[tokio::test]
#[allow(clippy::cast_precision_loss)]
async fn archive_throughput() {
    use finvision::domain::audit::{
        chain::{canonical_json, chain_hash},
        record::hashed_document,
    };
    let total: i32 = std::env::var("FV_ARCHIVE_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let app = TestApp::spawn().await;
    let org = Uuid::new_v4();
    app.sql_exec(&format!(
        "INSERT INTO organizations (id, name, slug, audit_retention_months) VALUES ('{org}', 'Bench', 'bench', 12)"
    ))
    .await;
    let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
    let core = app.app.core();
    ensure_partitions(core, start).await.unwrap();
    // Two months of events, a chain from the start, as `record` would have written them.
    let seeding = std::time::Instant::now();
    let mut prev: Option<Vec<u8>> = None;
    let mut conn = app.db.superuser_conn().await;
    let step = chrono::Duration::seconds(59 * 24 * 3600 / i64::from(total));
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..total {
        let created_at = start + step * i;
        let entity_id = Some(Uuid::new_v4());
        let new_values =
            Some(json!({"name": format!("Model {i}"), "currency": "EUR", "status": "DRAFT"}));
        let document = hashed_document(
            Some(org),
            None,
            None,
            "model.create",
            "FinancialModel",
            entity_id,
            None,
            new_values.as_ref(),
            None,
            None,
            None,
            created_at,
        );
        let hash = chain_hash(prev.as_deref(), &canonical_json(&document));
        batch.push(SeedEvent {
            organization_id: Some(org),
            action: "model.create".into(),
            entity_type: "FinancialModel".into(),
            entity_id,
            new_values,
            created_at,
            prev_hash: prev.replace(hash.clone()),
            hash,
        });
        if batch.len() == 1_000 || i + 1 == total {
            diesel::insert_into(audit_events::table)
                .values(std::mem::take(&mut batch))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    eprintln!("seeded {total} events in {:.1?}", seeding.elapsed());

    let started = std::time::Instant::now();
    let run = archive_expired(core, Utc::now()).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(run.events, i64::from(total));
    assert_eq!(run.months.len(), 2);
    eprintln!(
        "archived {} events ({} months) in {secs:.2} s: {:.0} events/s",
        run.events,
        run.months.len(),
        run.events as f64 / secs
    );
    assert!(
        verify_stored_archives(core, org)
            .await
            .unwrap()
            .iter()
            .all(|c| c.valid)
    );
}
