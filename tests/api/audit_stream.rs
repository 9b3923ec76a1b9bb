//! The LISTEN/NOTIFY fan-out against a real PostgreSQL: committed events are announced, rolled
//! back ones are not, and a lost listening connection is re-established with a resync notice.

use std::time::Duration;

use finvision::domain::audit::stream::{AuditNotice, AuditStream};
use tokio::sync::broadcast::Receiver;

use crate::helpers::{TestApp, eventually};

async fn next(rx: &mut Receiver<AuditNotice>) -> AuditNotice {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notice within 10 s")
        .expect("open channel")
}

#[tokio::test]
async fn committed_events_are_announced_and_a_lost_connection_resyncs() {
    let app = TestApp::spawn().await;
    let stream = AuditStream::new();
    let mut rx = stream.subscribe();
    let listener = stream.listen(app.db.app_url.clone());
    // Let the listener connect before anything happens.
    eventually("the listener connects", || async { stream.is_listening() }).await;

    // Registering writes an event of no organization.
    let owner = app.register("owner").await;
    assert!(matches!(
        next(&mut rx).await,
        AuditNotice::Event {
            organization_id: None,
            ..
        }
    ));
    let org = app.organization(&owner, "acme").await;
    let AuditNotice::Event {
        organization_id: Some(_),
        sequence,
    } = next(&mut rx).await
    else {
        panic!("expected an organization event");
    };
    assert!(sequence >= 2);

    // A rolled-back insert (of no organization) announces nothing: the next notice is the one
    // of the model created after it (notices arrive in commit order).
    app.sql_exec(
        "DO $$ BEGIN INSERT INTO audit_events (action, entity_type, hash) VALUES ('test.rollback', 'Test', '\\x00'); RAISE EXCEPTION 'roll back'; EXCEPTION WHEN OTHERS THEN NULL; END $$",
    )
    .await;
    app.gql(
        Some(&owner.token),
        "mutation($i: CreateModelInput!) { createModel(input: $i) { id } }",
        serde_json::json!({"i": {"organizationId": org, "name": "Plan", "currency": "USD",
            "startPeriod": "2026-01-01", "endPeriod": "2026-03-01"}}),
    )
    .await
    .data();
    let AuditNotice::Event {
        organization_id: Some(_),
        sequence: next_sequence,
    } = next(&mut rx).await
    else {
        panic!("expected the model's event, and nothing for the rollback");
    };
    assert!(next_sequence > sequence);

    // Kill every other connection to the database, the listener's included.
    app.sql_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .await;
    assert_eq!(next(&mut rx).await, AuditNotice::Resync);
    // And it listens again.
    app.sql_exec("INSERT INTO audit_events (action, entity_type, hash) VALUES ('test.after', 'Test', '\\x00')").await;
    assert!(matches!(
        next(&mut rx).await,
        AuditNotice::Event {
            organization_id: None,
            ..
        }
    ));
    listener.abort();
}
