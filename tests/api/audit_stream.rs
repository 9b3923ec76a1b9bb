//! The LISTEN/NOTIFY fan-out against a real PostgreSQL: committed events are announced, rolled
//! back ones are not, and a lost listening connection is re-established with a resync notice.

use std::time::Duration;

use finvision::domain::audit::stream::{AuditNotice, AuditStream};
use tokio::sync::broadcast::Receiver;

use crate::helpers::TestApp;

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
    let listener = stream.listen(app.db.url.clone());
    // Let the listener connect before anything happens.
    for _ in 0..200 {
        if stream.is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stream.is_listening());

    let owner = app.user("owner").await;
    assert!(matches!(
        next(&mut rx).await,
        AuditNotice::Event {
            organization_id: None,
            ..
        }
    ));
    app.organization(&owner, "acme").await;
    let AuditNotice::Event {
        organization_id: Some(_),
        sequence,
    } = next(&mut rx).await
    else {
        panic!("expected an organization event");
    };
    assert!(sequence >= 2);

    // A rolled-back insert announces nothing.
    app.sql_exec(
        "DO $$ BEGIN INSERT INTO audit_events (action, entity_type, hash) VALUES ('test.rollback', 'Test', '\\x00'); RAISE EXCEPTION 'roll back'; EXCEPTION WHEN OTHERS THEN NULL; END $$",
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .is_err(),
        "nothing for a rollback"
    );

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
