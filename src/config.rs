//! Configuration: flags with environment fallbacks, one `clap` parser for every subcommand.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, FromArgMatches, Parser, Subcommand};

/// FinVision API: a GraphQL backend for financial planning and analysis.
#[derive(Debug, Parser)]
#[command(name = "finvision", version, about)]
pub struct Cli {
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub config: Config,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP/GraphQL server (the default).
    Serve {
        /// Seed the demo organization first when the database has no organization yet.
        #[arg(long, env = "FV_SEED_DEMO")]
        seed_demo: bool,
    },
    /// Run pending migrations (or revert them all) and exit.
    Migrate {
        /// Revert every migration instead (drops all FinVision tables and their data).
        #[arg(long)]
        revert_all: bool,
    },
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Seed data and exit.
    Seed {
        /// Create the demo organization with one user per role.
        #[arg(long)]
        demo: bool,
    },
    /// Archive the audit months past each organization's retention to the object store, once,
    /// and exit (the server does it every FV_AUDIT_MAINTENANCE_SECS).
    ArchiveAudit {
        /// Judge expiry as of this instant (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Verify audit archive files and exit (status 1 when one does not verify): a JSON Lines
    /// FILE on its own, or every stored archive of an organization against its recorded row.
    VerifyArchive {
        /// An archive file (`audit-archive/<org>/<yyyy-mm>.jsonl`); needs no database.
        file: Option<PathBuf>,
        /// The hash (hex) the file's first event must follow: the previous archive's last hash.
        #[arg(long, requires = "file")]
        prev_hash: Option<String>,
        /// Verify every stored archive of this organization (its UUID) instead.
        #[arg(long, conflicts_with = "file")]
        organization: Option<uuid::Uuid>,
    },
    /// Create a user account and exit; the password is read from FV_NEW_USER_PASSWORD or generated and printed.
    CreateUser {
        /// The account's email.
        #[arg(long)]
        email: String,
        /// Display name (defaults to the email's local part).
        #[arg(long)]
        display_name: Option<String>,
        /// Make the account a platform superadmin.
        #[arg(long)]
        superadmin: bool,
    },
    /// Write the database (pg_dump, custom format) and every file of the file store into one
    /// archive with a manifest of checksums, and exit. Runs against DATABASE_URL, or starts the
    /// embedded cluster under FV_DATA_DIR.
    Backup {
        /// The archive to write (replaced whole once complete).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Restore an archive of `backup` into an empty database (DATABASE_URL, or the embedded
    /// cluster under an empty FV_DATA_DIR) and file store, after checking its checksums.
    Restore {
        /// The archive to read.
        #[arg(long)]
        from: std::path::PathBuf,
        /// Restore over a database or file store that holds data (its objects are replaced).
        #[arg(long)]
        force: bool,
    },
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL. Unset: a private cluster is started under FV_DATA_DIR from the machine's PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL URL of the one connection that LISTENs for notices (the audit fan-out, the
    /// caller cache) and of the migrations: both need a session of their own, so behind a
    /// transaction-pooling PgBouncer this names the server directly. Unset: DATABASE_URL.
    #[arg(long, env = "FV_LISTEN_DATABASE_URL", hide_env_values = true)]
    pub listen_database_url: Option<String>,
    /// PostgreSQL URL of the owner role that runs the migrations (and so owns the tables), when
    /// DATABASE_URL names the application role `finvision_app`, which may not. Unset:
    /// FV_LISTEN_DATABASE_URL, else DATABASE_URL (one role for both, as before).
    #[arg(long, env = "FV_MIGRATION_DATABASE_URL", hide_env_values = true)]
    pub migration_database_url: Option<String>,
    /// The pool talks to PgBouncer in transaction pooling mode (or another pooler that moves
    /// server connections between transactions): no prepared statement is cached, no session
    /// setting is made on pooled connections, and reads run inside a transaction too.
    #[arg(long, env = "FV_DB_PGBOUNCER", default_value_t = false, action = clap::ArgAction::Set)]
    pub db_pgbouncer: bool,
    /// Hot standbys that serve query operations, comma-separated PostgreSQL URLs. Mutations,
    /// subscriptions and every transaction use DATABASE_URL (the primary).
    #[arg(
        long,
        env = "FV_DATABASE_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub database_replica_urls: Vec<String>,
    /// A replica further behind the primary than this (milliseconds) serves no read until it
    /// catches up.
    #[arg(long, env = "FV_REPLICA_MAX_LAG_MS", default_value_t = 5_000)]
    pub replica_max_lag_ms: u64,
    /// How long a read that must see a write (`x-fv-lsn`, or the caller's own recent write)
    /// waits for a replica to replay it before it goes to the primary, in milliseconds.
    #[arg(long, env = "FV_REPLICA_WAIT_MS", default_value_t = 100)]
    pub replica_wait_ms: u64,
    /// How often each database's position (and so each replica's lag) is read, in milliseconds.
    #[arg(long, env = "FV_REPLICA_POLL_MS", default_value_t = 100)]
    pub replica_poll_ms: u64,
    /// For this many seconds after a session or API key writes, its reads on this instance
    /// wait for a replica that has replayed the write, without the client's help.
    #[arg(long, env = "FV_READ_YOUR_WRITES_SECS", default_value_t = 10)]
    pub read_your_writes_secs: u64,
    /// Address the HTTP server listens on.
    #[arg(long, env = "FV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the embedded PostgreSQL cluster and (by default) uploaded files live.
    #[arg(long, env = "FV_DATA_DIR", default_value = "./.finvision")]
    pub data_dir: PathBuf,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "FV_LOG", default_value = "info")]
    pub log: String,
    /// Log format: `text` or `json`.
    #[arg(long, env = "FV_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Serve `/metrics` on this address instead of the public listener (e.g. `127.0.0.1:9464`):
    /// the public one then answers 404 there. Unset: `/metrics` is on FV_LISTEN.
    #[arg(long, env = "FV_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log (at `warn`) every request that takes longer than this many milliseconds, with its
    /// operation, request id, statement count and slowest statement (SQL text only, never its
    /// parameters); 0 logs every request. Unset: no slow request log.
    #[arg(long, env = "FV_SLOW_REQUEST_MS")]
    pub slow_request_ms: Option<u64>,
    /// Export traces over OTLP/HTTP (protobuf) to this collector (e.g. `http://127.0.0.1:4318`;
    /// `/v1/traces` is added unless the URL ends with it). Unset: no traces, and no cost.
    #[arg(long, env = "FV_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Maximum connections in the database pool.
    #[arg(long, env = "FV_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Seconds to wait for a free database connection before failing the request.
    #[arg(long, env = "FV_DB_POOL_TIMEOUT_SECS", default_value_t = 3)]
    pub db_pool_timeout_secs: u64,
    /// Whether anyone may `register` an account.
    #[arg(long, env = "FV_REGISTRATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub registration: bool,
    /// Whether the schema answers introspection (GraphiQL needs it).
    #[arg(long, env = "FV_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Session lifetime in hours.
    #[arg(long, env = "FV_SESSION_TTL_HOURS", default_value_t = 24 * 14)]
    pub session_ttl_hours: u32,
    /// Maximum query depth (introspection-only queries have FV_MAX_INTROSPECTION_DEPTH instead).
    #[arg(long, env = "FV_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,
    /// Maximum query complexity.
    #[arg(long, env = "FV_MAX_COMPLEXITY", default_value_t = 5_000)]
    pub max_complexity: usize,
    /// Maximum operations in one batched request.
    #[arg(long, env = "FV_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,
    /// Maximum aliased fields in one operation.
    #[arg(long, env = "FV_MAX_ALIASES", default_value_t = 100)]
    pub max_aliases: usize,
    /// Maximum request body in bytes.
    #[arg(long, env = "FV_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds a WebSocket client has to send `connection_init` before it is closed (4408).
    #[arg(long, env = "FV_WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,
    /// Largest uploaded file in bytes (`uploadModelFile`); a multipart request may carry this
    /// much more than FV_MAX_BODY_BYTES, which still bounds every other body.
    #[arg(long, env = "FV_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Where uploaded files live. Unset: the local filesystem under `<FV_DATA_DIR>/files`;
    /// `memory://` keeps them in memory (lost at exit: tests, demos); `file:///abs/dir`,
    /// `s3://bucket/prefix`, `az://container/prefix` and `gs://bucket/prefix` name other stores
    /// (credentials from the usual AWS_*, AZURE_*, GOOGLE_* variables; each needs the cargo
    /// feature `s3`, `azure` or `gcs`).
    #[arg(long, env = "FV_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
    /// Argon2 hashes computed at once (each takes 19 MiB); defaults to the number of cores.
    #[arg(long, env = "FV_MAX_CONCURRENT_HASHES")]
    pub max_concurrent_hashes: Option<usize>,

    // ── The request guard (parsed document, before validation) ──────────────────────────────
    /// Maximum field selections in one operation after expanding fragment spreads.
    #[arg(long, env = "FV_MAX_SELECTIONS", default_value_t = 2_000)]
    pub max_selections: usize,
    /// Maximum fragment definitions in one document.
    #[arg(long, env = "FV_MAX_FRAGMENTS", default_value_t = 100)]
    pub max_fragments: usize,
    /// Maximum depth of an introspection-only query (GraphiQL's, Apollo's and graphql-codegen's
    /// standard queries fit).
    #[arg(long, env = "FV_MAX_INTROSPECTION_DEPTH", default_value_t = 15)]
    pub max_introspection_depth: usize,
    /// Maximum estimated size (values produced) of the introspection part of a response (the
    /// standard queries estimate 14–18 thousand; five nested `possibleTypes { interfaces }`
    /// levels 387 thousand).
    #[arg(long, env = "FV_MAX_INTROSPECTION_COST", default_value_t = 200_000)]
    pub max_introspection_cost: usize,

    // ── Formulas ─────────────────────────────────────────────────────────────────────────────
    /// Maximum length of a metric formula, in characters.
    #[arg(long, env = "FV_MAX_FORMULA_LENGTH", default_value_t = 2_000)]
    pub max_formula_length: usize,
    /// Maximum syntax-tree nodes of a metric formula.
    #[arg(long, env = "FV_MAX_FORMULA_NODES", default_value_t = 500)]
    pub max_formula_nodes: usize,
    /// Maximum arguments of one function call in a formula.
    #[arg(long, env = "FV_MAX_FORMULA_ARGS", default_value_t = 64)]
    pub max_formula_args: usize,
    /// Evaluation budget of one request: cells computed × formula nodes per cell.
    #[arg(long, env = "FV_EVAL_BUDGET", default_value_t = 5_000_000)]
    pub eval_budget: u64,
    /// Model evaluations running at once (off the async workers); defaults to the number of cores.
    #[arg(long, env = "FV_MAX_CONCURRENT_EVALUATIONS")]
    pub max_concurrent_evaluations: Option<usize>,

    // ── Reports ──────────────────────────────────────────────────────────────────────────────
    /// Reports waiting to be generated on this instance; `generateReport` beyond it is
    /// `UNAVAILABLE` (retry later).
    #[arg(long, env = "FV_REPORT_QUEUE", default_value_t = 32)]
    pub report_queue: usize,
    /// Reports generated at once on this instance (each also takes an evaluation slot per
    /// scenario, `FV_MAX_CONCURRENT_EVALUATIONS`).
    #[arg(long, env = "FV_REPORT_WORKERS", default_value_t = 2)]
    pub report_workers: usize,

    // ── Webhooks ─────────────────────────────────────────────────────────────────────────────
    /// Deliver webhooks to (and accept URLs of) loopback, private and link-local addresses, over
    /// plain HTTP too. Off by default: a tenant's URL must not reach the server's own network.
    #[arg(long, env = "FV_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Audit events per webhook POST at most (1–1000).
    #[arg(long, env = "FV_WEBHOOK_BATCH", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub webhook_batch: u16,
    /// Milliseconds one webhook attempt may take (connect, send, answer).
    #[arg(long, env = "FV_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Milliseconds before the first retry of a failed webhook batch; doubled per failure (with
    /// jitter), at most an hour.
    #[arg(long, env = "FV_WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000)]
    pub webhook_retry_base_ms: u64,
    /// Seconds of failures after which an endpoint is marked failing and paused.
    #[arg(long, env = "FV_WEBHOOK_RETRY_HORIZON_SECS", default_value_t = 24 * 3600)]
    pub webhook_retry_horizon_secs: u64,
    /// Milliseconds between an idle webhook worker's looks without a notice (and the claims of
    /// endpoints by this instance).
    #[arg(long, env = "FV_WEBHOOK_POLL_MS", default_value_t = 2_000)]
    pub webhook_poll_ms: u64,
    /// Seconds an instance's claim on an endpoint lasts without renewal: how long an endpoint
    /// waits after its instance crashed.
    #[arg(long, env = "FV_WEBHOOK_LEASE_SECS", default_value_t = 30)]
    pub webhook_lease_secs: u64,

    // ── Abuse limits ─────────────────────────────────────────────────────────────────────────
    /// Proxies whose `X-Forwarded-For` is believed (comma-separated CIDRs); the client is the
    /// right-most address not in this list.
    #[arg(long, env = "FV_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Failed sign-ins of one account allowed in 15 minutes; then it is locked, even for the
    /// right password, until older failures leave the window.
    #[arg(long, env = "FV_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 10)]
    pub login_failures_per_account: u32,
    /// Failed sign-ins from one client address (an IPv6 /64) allowed in 15 minutes.
    #[arg(long, env = "FV_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 100)]
    pub login_failures_per_address: u32,
    /// Accounts one client address (an IPv6 /64) may register per hour.
    #[arg(long, env = "FV_REGISTER_PER_ADDRESS_PER_HOUR", default_value_t = 20)]
    pub register_per_address_per_hour: u32,
    /// Sessions unused for this many hours stop working (unset: only the lifetime applies).
    #[arg(long, env = "FV_SESSION_IDLE_HOURS")]
    pub session_idle_hours: Option<u32>,

    // ── Caller cache ─────────────────────────────────────────────────────────────────────────
    /// Credentials (sessions, API keys, with their roles) kept in memory so that a known caller
    /// costs no statement; 0 disables the cache.
    #[arg(long, env = "FV_CALLER_CACHE_SIZE", default_value_t = 10_000)]
    pub caller_cache_size: u64,
    /// Seconds a cached credential is kept at most (changes clear it at once on every instance;
    /// this bounds the drift of the session idle limit and of an instance that misses notices).
    #[arg(long, env = "FV_CALLER_CACHE_TTL_SECS", default_value_t = 60)]
    pub caller_cache_ttl_secs: u64,

    /// Seconds between two runs of the audit maintenance task: create the coming months'
    /// partitions of `audit_events` and archive the months past each organization's retention
    /// (0: never; `finvision archive-audit` runs it once).
    #[arg(long, env = "FV_AUDIT_MAINTENANCE_SECS", default_value_t = 3600)]
    pub audit_maintenance_secs: u64,

    // ── Bounded I/O ──────────────────────────────────────────────────────────────────────────
    /// Seconds one HTTP request may take (body read and execution) before it is answered with 503 (0: none).
    #[arg(long, env = "FV_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// PostgreSQL `statement_timeout` of every pooled connection, in milliseconds (0: none).
    #[arg(long, env = "FV_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,

    // ── WebSocket ────────────────────────────────────────────────────────────────────────────
    /// Largest WebSocket message a client may send, in bytes.
    #[arg(long, env = "FV_WS_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub ws_max_message_bytes: usize,
    /// Operations (queries, mutations, subscriptions) one WebSocket may have in flight.
    #[arg(long, env = "FV_WS_MAX_OPERATIONS", default_value_t = 32)]
    pub ws_max_operations: usize,
    /// Seconds between re-checks of a WebSocket's credential while a subscription runs.
    #[arg(long, env = "FV_WS_REVALIDATE_SECS", default_value_t = 30)]
    pub ws_revalidate_secs: u64,
}

impl Config {
    /// A configuration with every default, pointed at `database_url` (tests build on this). It
    /// reads no environment variable, so a developer's `FV_*` settings cannot leak into tests;
    /// the server reads them through [`Cli`] (`Cli::parse` in `main`).
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let command = <Self as Args>::augment_args(clap::Command::new("finvision"))
            .mut_args(|arg| arg.env(None));
        let matches = command.get_matches_from(["finvision"]);
        let mut config = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        config.database_url = Some(database_url.into());
        config
    }

    /// The URL the migrations run on: FV_MIGRATION_DATABASE_URL, else the session URL.
    pub fn migration_database_url(&self) -> Option<&str> {
        self.migration_database_url
            .as_deref()
            .or(self.session_database_url())
    }

    /// The URL of the LISTEN connection and the migrations: FV_LISTEN_DATABASE_URL, else
    /// DATABASE_URL.
    pub fn session_database_url(&self) -> Option<&str> {
        self.listen_database_url
            .as_deref()
            .or(self.database_url.as_deref())
    }

    /// The webhook delivery settings.
    pub fn webhook_settings(&self) -> crate::domain::webhooks::WebhookSettings {
        let timeout = Duration::from_millis(self.webhook_timeout_ms.max(1));
        crate::domain::webhooks::WebhookSettings {
            allow_private: self.webhook_allow_private,
            batch: usize::from(self.webhook_batch.max(1)),
            timeout,
            retry_base: Duration::from_millis(self.webhook_retry_base_ms.max(1)),
            retry_horizon: Duration::from_secs(self.webhook_retry_horizon_secs),
            poll: Duration::from_millis(self.webhook_poll_ms.max(10)),
            // Renewed by the dispatcher while an attempt is in flight, however long it takes.
            lease: Duration::from_secs(self.webhook_lease_secs.max(1)),
            max_response_bytes: 64 * 1024,
        }
    }

    /// The session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(u64::from(self.session_ttl_hours) * 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_url_defaults_to_the_database_url() {
        let mut config = Config::for_database("postgres://pgbouncer:6432/fv");
        assert_eq!(
            config.session_database_url(),
            Some("postgres://pgbouncer:6432/fv")
        );
        config.listen_database_url = Some("postgres://primary:5432/fv".into());
        assert_eq!(
            config.session_database_url(),
            Some("postgres://primary:5432/fv")
        );
        assert!(!config.db_pgbouncer);
    }

    #[test]
    fn the_pgbouncer_settings_parse_from_flags() {
        let cli = Cli::parse_from([
            "finvision",
            "--db-pgbouncer",
            "true",
            "--listen-database-url",
            "postgres://primary/fv",
        ]);
        assert!(cli.config.db_pgbouncer);
        assert_eq!(
            cli.config.listen_database_url.as_deref(),
            Some("postgres://primary/fv")
        );
    }
}
