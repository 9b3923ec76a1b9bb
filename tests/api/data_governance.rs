//! Data governance: the server's database role cannot rewrite history, and row-level security
//! shows a connection only the rows of its caller's organizations, whatever SQL it sends.

use std::collections::HashSet;

use diesel::{QueryableByName, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::{factories::Team, helpers::TestApp};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn strings(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.value)
        .collect()
}

/// The rows of `table` (their physical addresses) that `caller` sees.
async fn rows_seen_as(conn: &mut AsyncPgConnection, caller: &str, table: &str) -> HashSet<String> {
    conn.batch_execute(&format!("SELECT fv_set_caller('{caller}', false)"))
        .await
        .expect("set the caller");
    strings(
        conn,
        &format!("SELECT t.ctid::text AS value FROM {table} t"),
    )
    .await
    .into_iter()
    .collect()
}

async fn app_conn(app: &TestApp) -> AsyncPgConnection {
    AsyncPgConnection::establish(&app.db.app_url)
        .await
        .expect("connect as the application role")
}

#[tokio::test]
async fn the_application_role_cannot_erase_or_rewrite_the_audit_trail() {
    let app = TestApp::spawn().await;
    // A sign-up writes an event (with the application role, through the API).
    let _team = Team::new(&app).await;
    let mut conn = app_conn(&app).await;
    conn.batch_execute("SELECT fv_set_caller('all', false)")
        .await
        .expect("a context");
    let before = strings(
        &mut conn,
        "SELECT count(*)::text AS value FROM audit_events",
    )
    .await;
    assert_ne!(before, vec!["0".to_owned()], "the API wrote events");
    // Appending is allowed: that is how the server records.
    for sql in [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_read ON audit_events",
        "DROP TABLE audit_events",
        "ALTER TABLE audit_events OWNER TO finvision_app",
        "CREATE TABLE audit_shadow (id bigint)",
        "SET session_replication_role = replica",
    ] {
        let result = conn.batch_execute(sql).await;
        assert!(result.is_err(), "{sql} must fail for the application role");
    }
    let after = strings(
        &mut conn,
        "SELECT count(*)::text AS value FROM audit_events",
    )
    .await;
    assert_eq!(before, after);
    let role = strings(
        &mut conn,
        "SELECT (rolsuper OR rolbypassrls)::text AS value FROM pg_roles WHERE rolname = current_user",
    )
    .await;
    assert_eq!(
        role,
        vec!["false".to_owned()],
        "no bypass of row-level security"
    );
}

/// Every table under row-level security, with the SQL (run as the owner) that gives the
/// organization of each row.
const TENANT_TABLES: &[(&str, &str)] = &[
    ("organizations", "t.id"),
    ("memberships", "t.organization_id"),
    ("api_keys", "t.organization_id"),
    ("financial_models", "t.organization_id"),
    (
        "scenarios",
        "(SELECT m.organization_id FROM financial_models m WHERE m.id = t.model_id)",
    ),
    (
        "parameters",
        "(SELECT m.organization_id FROM financial_models m WHERE m.id = t.model_id)",
    ),
    (
        "metrics",
        "(SELECT m.organization_id FROM financial_models m WHERE m.id = t.model_id)",
    ),
    (
        "model_files",
        "(SELECT m.organization_id FROM financial_models m WHERE m.id = t.model_id)",
    ),
    (
        "parameter_values",
        "(SELECT m.organization_id FROM scenarios s JOIN financial_models m ON m.id = s.model_id \
          WHERE s.id = t.scenario_id)",
    ),
    (
        "metric_values",
        "(SELECT m.organization_id FROM scenarios s JOIN financial_models m ON m.id = s.model_id \
          WHERE s.id = t.scenario_id)",
    ),
    (
        "metric_dependencies",
        "(SELECT m.organization_id FROM metrics x JOIN financial_models m ON m.id = x.model_id \
          WHERE x.id = t.metric_id)",
    ),
    ("audit_events", "t.organization_id"),
    ("audit_archives", "t.organization_id"),
    ("reports", "t.organization_id"),
    ("webhook_endpoints", "t.organization_id"),
    ("webhook_deliveries", "t.organization_id"),
];

#[tokio::test]
async fn row_level_security_shows_no_row_of_another_organization() {
    let app = TestApp::spawn().await;
    // Acme: the demo (models, scenarios, parameters, metrics, values, dependencies, events).
    finvision::domain::seed::seed_demo(app.app.core())
        .await
        .expect("seed");
    // Rival: another organization with its own members and a model.
    let rival = Team::with_slug(&app, "rival").await;
    rival.plan(&app).await;

    let mut owner = app.db.superuser_conn().await;
    let org_of =
        |slug: &str| format!("SELECT id::text AS value FROM organizations WHERE slug = '{slug}'");
    let acme = strings(&mut owner, &org_of("acme")).await.remove(0);
    let rival_org = strings(&mut owner, &org_of("rival")).await.remove(0);
    let rival_user = strings(
        &mut owner,
        &format!(
            "SELECT user_id::text AS value FROM memberships WHERE organization_id = '{rival_org}' \
             AND role = 'OWNER'"
        ),
    )
    .await
    .remove(0);
    let acme_user = strings(
        &mut owner,
        &format!(
            "SELECT user_id::text AS value FROM memberships WHERE organization_id = '{acme}' LIMIT 1"
        ),
    )
    .await
    .remove(0);

    // A report of Acme's (the demo has none).
    owner
        .batch_execute(&format!(
            "INSERT INTO reports (organization_id, model_id, name, format, scenario_ids) \
             SELECT m.organization_id, m.id, 'Export', 'CSV', \
                    ARRAY[(SELECT s.id FROM scenarios s WHERE s.model_id = m.id LIMIT 1)] \
             FROM financial_models m WHERE m.organization_id = '{acme}' LIMIT 1"
        ))
        .await
        .expect("a report of Acme's");

    // A webhook endpoint of Acme's with one delivery attempt.
    owner
        .batch_execute(&format!(
            "INSERT INTO webhook_endpoints (id, organization_id, url, secret, cursor) \
             VALUES ('00000000-0000-4000-8000-00000000000a', '{acme}', 'https://hooks.example/a', \
                     'whsec_x', 0); \
             INSERT INTO webhook_deliveries (endpoint_id, organization_id, webhook_id, \
                     first_sequence, last_sequence, event_count, duration_ms) \
             VALUES ('00000000-0000-4000-8000-00000000000a', '{acme}', 'msg_1', 1, 1, 1, 5)"
        ))
        .await
        .expect("a webhook endpoint of Acme's");

    // Every table that holds an organization's rows is in the list above, under a policy.
    let tenant_tables = strings(
        &mut owner,
        "SELECT c.relname || CASE WHEN c.relrowsecurity THEN '' ELSE ' (no policy)' END AS value \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                       AND a.attname = 'organization_id' AND NOT a.attisdropped) \
         ORDER BY 1",
    )
    .await;
    let unchecked = tenant_tables
        .into_iter()
        .filter(|table| !TENANT_TABLES.iter().any(|(listed, _)| listed == table))
        .collect::<Vec<_>>();
    assert!(
        unchecked.is_empty(),
        "tables with an organization_id not checked here, or without row-level security: \
         {unchecked:?}"
    );

    let mut conn = app_conn(&app).await;
    let mut covered = 0;
    for (table, org_expr) in TENANT_TABLES {
        // The rows of Acme, by their physical address, as the owner sees them.
        let acme_rows: HashSet<String> = strings(
            &mut owner,
            &format!("SELECT t.ctid::text AS value FROM {table} t WHERE {org_expr} = '{acme}'"),
        )
        .await
        .into_iter()
        .collect();
        if !acme_rows.is_empty() {
            covered += 1;
        }
        for caller in [
            String::new(),
            // A user of Rival, with their organizations as the server names them.
            format!("u:{rival_user}:{rival_org}"),
            // And one who claims no organization.
            format!("u:{rival_user}:"),
            format!("o:{rival_org}"),
            // A setting no server writes.
            "acme".to_owned(),
        ] {
            let seen = rows_seen_as(&mut conn, &caller, table).await;
            assert!(
                seen.is_disjoint(&acme_rows),
                "{table}: caller {caller:?} sees rows of another organization"
            );
            if caller.is_empty() && *table != "audit_events" {
                assert!(seen.is_empty(), "{table}: an anonymous caller sees rows");
            }
        }
        // Acme's own member sees them all: with Acme first (the policies' equality), second
        // (their list), as an API key of Acme's, and the server's own work.
        for caller in [
            format!("u:{acme_user}:{acme}"),
            format!("u:{acme_user}:{rival_org},{acme}"),
            format!("o:{acme}"),
            "all".to_owned(),
        ] {
            let seen = rows_seen_as(&mut conn, &caller, table).await;
            assert!(
                acme_rows.is_subset(&seen),
                "{table}: caller {caller:?} misses rows"
            );
        }
    }
    assert!(
        covered >= 9,
        "the demo fills most tenant tables ({covered})"
    );

    // Writes are held to the same rule: no row of Acme can be changed by another caller.
    conn.batch_execute(&format!(
        "SELECT fv_set_caller('u:{rival_user}:{rival_org}', false)"
    ))
    .await
    .expect("set the caller");
    let changed = strings(
        &mut conn,
        &format!(
            "WITH u AS (UPDATE financial_models SET name = 'x' WHERE organization_id = '{acme}' \
             RETURNING 1) SELECT count(*)::text AS value FROM u"
        ),
    )
    .await;
    assert_eq!(changed, vec!["0".to_owned()]);
    let insert = conn
        .batch_execute(&format!(
            "INSERT INTO api_keys (organization_id, name, prefix, key_hash, role) \
             VALUES ('{acme}', 'x', 'fv_x', '\\x00', 'VIEWER')"
        ))
        .await;
    assert!(insert.is_err(), "a key for another organization is refused");
}

/// Every child row carries its parent's organization (what the policies compare): filled from
/// the parent when an INSERT leaves it out, refused when it names another organization, and a
/// caller cannot attach a row to a parent it may not see.
#[tokio::test]
async fn a_row_always_carries_its_parents_organization() {
    let app = TestApp::spawn().await;
    finvision::domain::seed::seed_demo(app.app.core())
        .await
        .expect("seed");
    let rival = Team::with_slug(&app, "rival").await;
    rival.plan(&app).await;
    let mut owner = app.db.superuser_conn().await;
    let acme = strings(
        &mut owner,
        "SELECT id::text AS value FROM organizations WHERE slug = 'acme'",
    )
    .await
    .remove(0);
    let rival_org = strings(
        &mut owner,
        "SELECT id::text AS value FROM organizations WHERE slug = 'rival'",
    )
    .await
    .remove(0);
    let acme_model = strings(
        &mut owner,
        &format!(
            "SELECT id::text AS value FROM financial_models WHERE organization_id = '{acme}' LIMIT 1"
        ),
    )
    .await
    .remove(0);

    // Every stored child agrees with its parent.
    for (table, parent) in [
        ("scenarios", "financial_models p WHERE p.id = t.model_id"),
        ("parameters", "financial_models p WHERE p.id = t.model_id"),
        ("metrics", "financial_models p WHERE p.id = t.model_id"),
        ("parameter_values", "scenarios p WHERE p.id = t.scenario_id"),
        ("metric_values", "scenarios p WHERE p.id = t.scenario_id"),
        ("metric_dependencies", "metrics p WHERE p.id = t.metric_id"),
    ] {
        let wrong = strings(
            &mut owner,
            &format!(
                "SELECT count(*)::text AS value FROM {table} t \
                 WHERE t.organization_id IS DISTINCT FROM (SELECT p.organization_id FROM {parent})"
            ),
        )
        .await;
        assert_eq!(wrong, vec!["0".to_owned()], "{table}");
    }

    // Left out: filled from the model.
    let filled = strings(
        &mut owner,
        &format!(
            "INSERT INTO scenarios (model_id, name, kind) VALUES ('{acme_model}', 'By hand', 'CUSTOM') \
             RETURNING organization_id::text AS value"
        ),
    )
    .await;
    assert_eq!(filled, vec![acme.clone()]);
    // Another organization than the model's: refused, even for the owner.
    let wrong = owner
        .batch_execute(&format!(
            "INSERT INTO scenarios (model_id, organization_id, name, kind) \
             VALUES ('{acme_model}', '{rival_org}', 'Smuggled', 'CUSTOM')"
        ))
        .await;
    assert!(
        wrong
            .expect_err("a row in another organization than its model's")
            .to_string()
            .contains("foreign key"),
    );
    // A caller of Rival cannot hang a scenario under Acme's model, named or not.
    let rival_user = strings(
        &mut owner,
        &format!(
            "SELECT user_id::text AS value FROM memberships WHERE organization_id = '{rival_org}' \
             AND role = 'OWNER'"
        ),
    )
    .await
    .remove(0);
    let mut conn = app_conn(&app).await;
    conn.batch_execute(&format!(
        "SELECT fv_set_caller('u:{rival_user}:{rival_org}', false)"
    ))
    .await
    .expect("set the caller");
    for sql in [
        format!(
            "INSERT INTO scenarios (model_id, name, kind) VALUES ('{acme_model}', 'x', 'CUSTOM')"
        ),
        format!(
            "INSERT INTO scenarios (model_id, organization_id, name, kind) \
             VALUES ('{acme_model}', '{rival_org}', 'x', 'CUSTOM')"
        ),
        format!(
            "INSERT INTO scenarios (model_id, organization_id, name, kind) \
             VALUES ('{acme_model}', '{acme}', 'x', 'CUSTOM')"
        ),
    ] {
        assert!(conn.batch_execute(&sql).await.is_err(), "{sql}");
    }
    let count = strings(
        &mut owner,
        &format!(
            "SELECT count(*)::text AS value FROM scenarios WHERE model_id = '{acme_model}' \
             AND name IN ('x', 'Smuggled')"
        ),
    )
    .await;
    assert_eq!(count, vec!["0".to_owned()]);
}

/// The server can tell whether the net applies to its role: it warns at start when it connects
/// as a superuser or a `BYPASSRLS` role.
#[tokio::test]
async fn the_server_knows_whether_row_level_security_applies_to_it() {
    let app = TestApp::spawn().await;
    assert!(
        !app.app
            .core()
            .bypasses_row_level_security()
            .await
            .expect("asks")
    );
    let config = finvision::config::Config::for_database(&app.db.url);
    let owner = finvision::db::Db::connect(
        &app.db.url,
        &finvision::db::PoolOptions {
            max_size: 1,
            connection_timeout: std::time::Duration::from_secs(5),
        },
    )
    .await
    .expect("connect as the superuser");
    let as_owner = finvision::app::App::new(config, owner).expect("an app");
    assert!(
        as_owner
            .core()
            .bypasses_row_level_security()
            .await
            .expect("asks")
    );
}

/// The server's connections keep generic plans (the policies' InitPlans are then planned once
/// per statement and connection, not on every execution), except inside `fv_search`, which
/// keeps PostgreSQL's own choice.
#[tokio::test]
async fn pooled_connections_keep_generic_plans_and_search_chooses_its_own() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.conn().await.expect("a pooled connection");
    assert_eq!(
        strings(
            &mut conn,
            "SELECT current_setting('plan_cache_mode') AS value"
        )
        .await,
        vec!["force_generic_plan".to_owned()]
    );
    assert_eq!(
        app.sql_texts(
            "SELECT ('plan_cache_mode=auto' = ANY (proconfig))::text AS t FROM pg_proc \
             WHERE proname = 'fv_search'"
        )
        .await,
        vec!["true".to_owned()]
    );
}

/// The server writes the caller's settings itself (`fv.caller` and the three the policies read);
/// the database derives them from `fv.caller` in `fv_set_caller` (a transaction that changes
/// the caller's memberships). Both must write what the policies expect, for every kind of
/// caller.
#[tokio::test]
async fn the_server_and_the_database_derive_the_same_caller_settings() {
    use finvision::db::DbCaller;
    use uuid::Uuid;
    let app = TestApp::spawn().await;
    let (user, first, second) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    const READ: &str = "SELECT concat_ws('|', current_setting('fv.caller'), \
                        current_setting('fv.all'), current_setting('fv.org'), \
                        current_setting('fv.orgs')) AS value";
    const NIL: &str = "00000000-0000-0000-0000-000000000000";
    let mut database = app_conn(&app).await;
    // `fv.orgs` names only the organizations after the first, and nothing for most callers:
    // the policies then reject a foreign row without taking an array apart.
    for (caller, expected) in [
        (DbCaller::All, format!("all|on|{NIL}|")),
        (
            DbCaller::User(user, vec![first, second].into()),
            format!("u:{user}:{first},{second}|off|{first}|{{{second}}}"),
        ),
        (
            DbCaller::User(user, vec![second].into()),
            format!("u:{user}:{second}|off|{second}|"),
        ),
        (
            DbCaller::User(user, Vec::new().into()),
            format!("u:{user}:|off|{NIL}|"),
        ),
        (
            DbCaller::Organization(first),
            format!("o:{first}|off|{first}|"),
        ),
        (DbCaller::Nobody, format!("|off|{NIL}|")),
    ] {
        let db = app.pool.for_caller(caller.clone());
        let mut conn = db.conn().await.expect("a pooled connection");
        let by_server = strings(&mut conn, READ).await.remove(0);
        assert_eq!(by_server, expected, "{caller:?}");
        let setting = by_server.split('|').next().expect("fv.caller").to_owned();
        database
            .batch_execute(&format!("SELECT fv_set_caller('{setting}', false)"))
            .await
            .expect("fv_set_caller");
        let by_database = strings(&mut database, READ).await.remove(0);
        assert_eq!(by_server, by_database, "{caller:?}");
    }
}
