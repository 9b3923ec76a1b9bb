//! Every migration reverts cleanly: all down, then all up again, on a migrated database.

use diesel::migration::MigrationSource;
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::RunQueryDsl;
use finvision::db::migrate::{Direction, MIGRATIONS, run};

use crate::helpers::TestDb;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn table_count(db: &TestDb) -> i64 {
    let mut conn = db.superuser_conn().await;
    let row: Count = diesel::sql_query(
        // Partitions of audit_events are not tables of the data model.
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
         WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND c.relname <> '__diesel_schema_migrations'",
    )
    .get_result(&mut conn)
    .await
    .expect("count tables");
    row.n
}

#[tokio::test]
async fn all_down_then_all_up_round_trips() {
    let db = TestDb::new().await;
    let total = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .expect("migrations")
        .len();
    assert_eq!(table_count(&db).await, 18, "the data model has 18 tables");

    let reverted = run(&db.url, Direction::RevertAll)
        .await
        .expect("revert all");
    assert_eq!(reverted.len(), total);
    assert_eq!(
        table_count(&db).await,
        0,
        "every down.sql drops what its up.sql created"
    );

    let applied = run(&db.url, Direction::Up).await.expect("migrate up again");
    assert_eq!(applied.len(), total);
    assert_eq!(table_count(&db).await, 18);
    assert!(
        run(&db.url, Direction::Up)
            .await
            .expect("idempotent")
            .is_empty()
    );
}

#[tokio::test]
async fn audit_events_are_append_only_in_the_database() {
    let db = TestDb::new().await;
    let mut conn = db.superuser_conn().await;
    diesel::sql_query("INSERT INTO audit_events (action, entity_type, hash) VALUES ('test.event', 'Test', '\\x00')")
        .execute(&mut conn)
        .await
        .expect("insert");
    for sql in [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

/// A server that connects as the application role alone (no `FV_MIGRATION_DATABASE_URL`)
/// starts on a database the owner migrated: the check changes nothing and needs no right to;
/// where migrations are pending, it says who must run them.
#[tokio::test]
async fn the_application_role_starts_on_a_migrated_database_and_cannot_migrate() {
    let db = TestDb::new().await;
    let applied = run(&db.app_url, Direction::Up)
        .await
        .expect("an up-to-date database needs no migration");
    assert!(applied.is_empty());

    let empty = TestDb::empty().await;
    let refused = run(&crate::helpers::as_app_role(&empty.url), Direction::Up)
        .await
        .expect_err("the application role may not create tables");
    let message = refused.to_string();
    assert!(message.contains("FV_MIGRATION_DATABASE_URL"), "{message}");
    assert_eq!(table_count(&empty).await, 0, "nothing was created");
}
