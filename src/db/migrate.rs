//! Embedded migrations, run through diesel-async's sync wrapper on a blocking thread.

use diesel::{RunQueryDsl, connection::SimpleConnection};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// What `finvision migrate` prints: the two roles a server database needs, and how to make them.
pub const ROLES_HELP: &str = "\
FinVision runs with two database roles:
  owner          runs these migrations and owns every table (FV_MIGRATION_DATABASE_URL)
  finvision_app  what the server connects as (DATABASE_URL): owns nothing, holds only the grants
                 the migrations give it (audit_events: INSERT and SELECT), and row-level security
                 applies to it
To create them (as a superuser; then run `finvision migrate` as the owner):
  CREATE ROLE finvision_owner LOGIN PASSWORD '...';
  CREATE ROLE finvision_app LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  CREATE DATABASE finvision OWNER finvision_owner;
  -- in an existing database instead: ALTER SCHEMA public OWNER TO finvision_owner;
  --   REASSIGN OWNED BY <old owner> TO finvision_owner;
";

/// Key of the advisory lock that serialises migrations of several instances starting at once.
const MIGRATION_LOCK: i64 = 0x4656_4d49_4752; // "FVMIGR"

/// Which way to migrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Apply every pending migration.
    Up,
    /// Revert every applied migration.
    RevertAll,
}

/// The embedded migrations that `url`'s database has not applied, read without writing
/// anything: `None` when it has no migration table yet. Needs only `SELECT` on the table (the
/// application role has it), where diesel's own check would first try to create it.
fn pending(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>) -> anyhow::Result<Option<usize>> {
    use diesel::migration::MigrationSource;
    use diesel::{
        QueryableByName,
        sql_types::{Nullable, Text},
    };
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Nullable<Text>)]
        version: Option<String>,
    }
    let exists: Vec<Version> =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations')::text AS version")
            .load(conn)?;
    if exists.first().and_then(|v| v.version.as_ref()).is_none() {
        return Ok(None);
    }
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .filter_map(|v| v.version)
            .collect();
    let embedded = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("reading the embedded migrations: {e}"))?;
    Ok(Some(
        embedded
            .iter()
            .filter(|m| !applied.contains(&m.name().version().to_string()))
            .count(),
    ))
}

/// Run the migrations against `url`; returns the versions applied or reverted. Up to date, it
/// changes nothing and needs no right to: a server that connects as the application role
/// alone (no `FV_MIGRATION_DATABASE_URL`) starts on a database the owner migrated.
#[tracing::instrument(skip_all, fields(?direction))]
pub async fn run(url: &str, direction: Direction) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        use diesel::Connection;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        // A role that may not read the table (an old database) finds out below, as before.
        if direction == Direction::Up && matches!(pending(&mut conn), Ok(Some(0))) {
            return Ok(Vec::new());
        }
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn)?;
        let result = match direction {
            Direction::Up => conn.run_pending_migrations(MIGRATIONS),
            Direction::RevertAll => conn.revert_all_migrations(MIGRATIONS),
        }
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "migration failed: {e} (migrations run as the tables' owner: \
                 FV_MIGRATION_DATABASE_URL, or `finvision migrate` with the owner's DATABASE_URL)"
            )
        });
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        let versions = result?;
        for version in &versions {
            tracing::info!(%version, "migration {}", if direction == Direction::Up { "applied" } else { "reverted" });
        }
        Ok(versions)
    })
    .await?
}
