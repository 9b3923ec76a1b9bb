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

/// Run the migrations against `url`; returns the versions applied or reverted.
#[tracing::instrument(skip_all, fields(?direction))]
pub async fn run(url: &str, direction: Direction) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        use diesel::Connection;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn)?;
        let result = match direction {
            Direction::Up => conn.run_pending_migrations(MIGRATIONS),
            Direction::RevertAll => conn.revert_all_migrations(MIGRATIONS),
        }
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        let versions = result?;
        for version in &versions {
            tracing::info!(%version, "migration {}", if direction == Direction::Up { "applied" } else { "reverted" });
        }
        Ok(versions)
    })
    .await?
}
