//! The `finvision` binary: parse configuration → telemetry → database (or the embedded cluster)
//! → migrations → serve, or another subcommand.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use finvision::{
    App,
    api::schema::sdl,
    config::{Cli, Command, Config},
    db::{Db, PoolOptions, embedded::EmbeddedPostgres, migrate},
    domain::{
        Core,
        audit::{archive, archive_file},
        auth::accounts,
    },
    telemetry,
};

// mimalloc (2.x) rather than glibc's malloc: glibc keeps what a thread freed in that thread's
// arena, so every blocking thread that ran an argon2 hash (19 MiB) and every burst of bulk
// upserts left the process at its high-water mark for good; mimalloc returns freed pages to the
// system. RSS after the full load through the API (`bench/run.sh --via-api`): 121 → 36 MiB;
// after 16 × 4 upserts of 10,000 values (`bench/bulk_upserts.py`): 398 → 66 MiB; Q1/Q3 server
// CPU per request equal or lower. Figures and the allocators compared: bench/README.md, "Memory".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the database is: the configured server, or our private cluster (kept alive here).
struct Database {
    /// What the server connects as: the application role (`finvision_app`).
    url: String,
    /// What the migrations run as: the owner of the tables.
    owner_url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    async fn open(config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            return Ok(Self {
                url: url.clone(),
                owner_url: config
                    .migration_database_url()
                    .map_or_else(|| url.clone(), str::to_owned),
                embedded: None,
            });
        }
        tracing::info!(data_dir = %config.data_dir.display(), "DATABASE_URL is not set: starting the embedded PostgreSQL cluster");
        let embedded = EmbeddedPostgres::start(&config.data_dir).await?;
        // The cluster's superuser owns the tables and migrates; the server runs as the
        // application role, which row-level security applies to.
        Ok(Self {
            url: embedded.app_database_url(),
            owner_url: embedded.database_url(),
            embedded: Some(embedded),
        })
    }

    async fn close(mut self) {
        if let Some(embedded) = self.embedded.as_mut()
            && let Err(err) = embedded.stop().await
        {
            tracing::warn!(error = %err, "stopping the embedded PostgreSQL cluster failed");
        }
    }
}

async fn connect(config: &Config, url: &str) -> anyhow::Result<Db> {
    Db::connect(
        url,
        &PoolOptions {
            max_size: config.db_pool_size,
            connection_timeout: Duration::from_secs(config.db_pool_timeout_secs),
        },
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: draining in-flight requests");
}

async fn serve(config: Config, db: Db, seed_demo: bool) -> anyhow::Result<()> {
    let app = App::new(config.clone(), db)?;
    if app
        .core()
        .bypasses_row_level_security()
        .await
        .unwrap_or(false)
    {
        tracing::warn!(
            "the database role bypasses row-level security (a superuser or BYPASSRLS): the \
             policies do not apply; connect as finvision_app (README, \"Data governance\")"
        );
    }
    if seed_demo {
        finvision::domain::seed::seed_demo_if_empty(app.core())
            .await
            .map_err(|e| anyhow::anyhow!("seeding the demo data failed: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // API key `last_used_at` is noted in memory and written in one statement per period.
    let usage_flusher = tokio::spawn(finvision::domain::auth::api_keys::flush_usage_every(
        app.core().clone(),
        Duration::from_secs(30),
    ));
    // Partitions ahead of time and the archive of expired audit months (the first run at once).
    let audit_maintenance = (config.audit_maintenance_secs > 0).then(|| {
        tokio::spawn(archive::run_every(
            app.core().clone(),
            Duration::from_secs(config.audit_maintenance_secs),
        ))
    });
    tracing::info!(address = %config.listen, "FinVision API ready: GraphiQL at http://{}/graphql", config.listen);
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        app.router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    });
    // Draining waits for in-flight requests, but long-lived WebSockets would hold it forever:
    // after the grace period the process exits anyway.
    tokio::select! {
        result = server => result?,
        () = async {
            let _ = stopping.changed().await;
            tokio::time::sleep(finvision::http::SHUTDOWN_GRACE).await;
        } => tracing::warn!("shutdown grace period elapsed with connections still open"),
    }
    usage_flusher.abort();
    if let Some(task) = audit_maintenance {
        task.abort();
    }
    if let Err(err) = finvision::domain::auth::api_keys::flush_usage(app.core()).await {
        tracing::warn!(error = %err, "flushing API key usage at shutdown failed");
    }
    Ok(())
}

/// `finvision verify-archive FILE`: the file on its own, no database.
fn verify_archive_file(file: &std::path::Path, prev_hash: Option<&str>) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let prev = prev_hash
        .map(hex::decode)
        .transpose()
        .context("--prev-hash is not hex")?;
    let report = archive_file::verify_archive(&bytes, prev.as_deref().map(Some));
    println!("{}", archive_file::report_json(&report));
    anyhow::ensure!(report.valid, "{} does not verify", file.display());
    Ok(())
}

fn generated_password() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    let command = cli.command.unwrap_or(Command::Serve { seed_demo: false });
    if let Command::Schema = command {
        print!("{}", sdl());
        return Ok(());
    }
    if let Command::VerifyArchive {
        file: Some(file),
        prev_hash,
        ..
    } = &command
    {
        return verify_archive_file(file, prev_hash.as_deref());
    }
    let database = Database::open(&config).await?;
    let result = async {
        // Migrations want a session (behind PgBouncer, FV_LISTEN_DATABASE_URL names the server)
        // of the owner role (FV_MIGRATION_DATABASE_URL).
        let owner_url = &database.owner_url;
        // Before the migrations, as the owner (pg_dump sees every row only past row-level
        // security, which the owner's role bypasses): a backup copies the database as it is, and a restore brings
        // its own schema (the next `serve` migrates it forward).
        if let Command::Backup { out } | Command::Restore { from: out, .. } = &command {
            let files = finvision::domain::storage::FileStore::open(&config)?;
            let target = finvision::backup::Target {
                database_url: &database.owner_url,
                bin_dir: database.embedded.as_ref().map(EmbeddedPostgres::bin_dir),
                files: &files,
            };
            let manifest = match command {
                Command::Restore { force, .. } => {
                    finvision::backup::restore(&target, out, force).await?
                }
                _ => finvision::backup::backup(&target, out).await?,
            };
            println!(
                "{} {} ({} files, taken {})",
                if matches!(command, Command::Backup { .. }) {
                    "backed up to"
                } else {
                    "restored from"
                },
                out.display(),
                manifest.file_count(),
                manifest.created_at.to_rfc3339()
            );
            return Ok(());
        }
        if let Command::Migrate { revert_all: true } = command {
            migrate::run(owner_url, migrate::Direction::RevertAll).await?;
            return Ok(());
        }
        migrate::run(owner_url, migrate::Direction::Up).await?;
        if let Command::Migrate { .. } = command {
            print!("{}", migrate::ROLES_HELP);
            return Ok(());
        }
        let db = connect(&config, &database.url).await?;
        // The embedded cluster's URL too: the audit listener opens its own connection.
        let mut config = config.clone();
        config.database_url = Some(database.url.clone());
        match command {
            Command::Serve { seed_demo } => serve(config.clone(), db, seed_demo).await,
            Command::Migrate { .. }
            | Command::Schema
            | Command::Backup { .. }
            | Command::Restore { .. } => Ok(()),
            Command::ArchiveAudit { now } => {
                let core = Core::new(db, &config)?;
                let now = now.unwrap_or_else(chrono::Utc::now);
                archive::ensure_partitions(&core, now)
                    .await
                    .map_err(|e| anyhow::anyhow!("creating audit partitions failed: {e}"))?;
                let started = std::time::Instant::now();
                let run = archive::archive_expired(&core, now)
                    .await
                    .map_err(|e| anyhow::anyhow!("archiving failed: {e}"))?;
                let secs = started.elapsed().as_secs_f64();
                for (org, month) in &run.months {
                    println!("archived {org} {}", month.format("%Y-%m"));
                }
                #[allow(clippy::cast_precision_loss)]
                let rate = if secs > 0.0 {
                    run.events as f64 / secs
                } else {
                    0.0
                };
                println!(
                    "{} months, {} events in {secs:.2} s ({rate:.0} events/s)",
                    run.months.len(),
                    run.events
                );
                Ok(())
            }
            Command::VerifyArchive { organization, .. } => {
                let organization =
                    organization.ok_or_else(|| anyhow::anyhow!("name a FILE or --organization"))?;
                let core = Core::new(db, &config)?;
                let checks = archive::verify_stored_archives(&core, organization)
                    .await
                    .map_err(|e| anyhow::anyhow!("verifying the archives failed: {e}"))?;
                let mut all_valid = true;
                for check in &checks {
                    all_valid &= check.valid;
                    println!(
                        "{} {} events {} {}",
                        check.month.format("%Y-%m"),
                        check.report.events,
                        check.storage_key,
                        if check.valid { "valid" } else { "INVALID" }
                    );
                }
                anyhow::ensure!(all_valid, "an archive does not verify");
                Ok(())
            }
            Command::Seed { demo } => {
                anyhow::ensure!(demo, "nothing to seed: pass --demo");
                finvision::domain::seed::seed_demo(&Core::new(db, &config)?)
                    .await
                    .map_err(|e| anyhow::anyhow!("seeding the demo data failed: {e}"))?;
                Ok(())
            }
            Command::CreateUser {
                email,
                display_name,
                superadmin,
            } => {
                let (password, generated) = match std::env::var("FV_NEW_USER_PASSWORD") {
                    Ok(p) => (p, false),
                    Err(_) => (generated_password(), true),
                };
                let name = display_name
                    .unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_owned());
                let core = Core::new(db, &config)?;
                let user = accounts::create_user(&core, &email, &name, &password, superadmin)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!(
                    "created user {} ({}){}",
                    user.email,
                    user.id,
                    if superadmin { " as superadmin" } else { "" }
                );
                if generated {
                    println!("password: {password}  (shown once)");
                }
                Ok(())
            }
        }
    }
    .await;
    database.close().await;
    result
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.config.log, &cli.config.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
