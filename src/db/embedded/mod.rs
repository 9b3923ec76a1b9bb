//! A private PostgreSQL cluster started from the machine's own binaries.
//!
//! When the server is started without `DATABASE_URL` it runs its own cluster
//! in `<data_dir>/pgdata`, listening only on `127.0.0.1` on a port picked at
//! each start, and stops it on shutdown. The tests use the same module to get
//! a database on machines where no server runs.
//!
//! Layout under `data_dir`:
//!
//! * `pgdata/`        – the cluster (created once by `initdb`, reused afterwards)
//! * `pg-password`    – the superuser password (mode 0600, never logged)
//! * `pg-app-password` – the password of `finvision_app`, the role the server runs as (the
//!   superuser owns the tables and runs the migrations; same mode, set again at each start)
//! * `postgres.log`   – server log written by `pg_ctl -l`
//! * `run/`           – unix socket directory and working directory of the
//!   PostgreSQL processes (owned by the runtime user)
//!
//! PostgreSQL refuses to run as root, so when the current process is root the
//! commands are run as the `postgres` system user (or `nobody`).
//!
//! One data directory belongs to one process at a time: a postmaster found
//! running on our data directory at start is taken to be an orphan of a
//! previous run that crashed before it could stop it, and is stopped (fast
//! shutdown) before the cluster is started again on a fresh port.
//!
//! The parts: `binaries` finds `initdb`, `pg_ctl` and `postgres`; `ownership` settles who
//! owns what under the data directory (the runtime user, permissions, the password file, a
//! postmaster left behind by an earlier run); `process` runs the PostgreSQL commands (initdb,
//! start, stop, creating the database). This file holds the public handle and its error type.

mod binaries;
mod ownership;
mod process;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use binaries::LIB_ROOT;
use ownership::{RunAs, runtime_user};
use process::{PG_CTL_TIMEOUT_SECS, check_path_chars, read_postmaster_pid};

pub use binaries::find_binaries;

/// Name of the cluster superuser and of the application database.
const SUPERUSER: &str = "finvision";
/// Application database created after the first start.
const DATABASE: &str = "finvision";
/// The application role (the name the migrations grant to).
pub const APP_ROLE: &str = "finvision_app";

/// Errors raised while setting up, starting or stopping the embedded cluster.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No directory with `initdb`, `pg_ctl` and `postgres` was found.
    #[error(
        "PostgreSQL binaries (initdb, pg_ctl, postgres) were not found on PATH or under \
         {LIB_ROOT}/*/bin; install PostgreSQL (e.g. `apt-get install postgresql`) or set \
         DATABASE_URL to an existing PostgreSQL server"
    )]
    NoBinaries,
    /// A file system operation failed; the string says what was attempted.
    #[error("{0}: {1}")]
    Io(String, #[source] io::Error),
    /// An external command exited unsuccessfully.
    #[error("`{program}` failed ({status}): {detail}")]
    Command {
        /// The command that was run (without secrets).
        program: String,
        /// Its exit status.
        status: String,
        /// Its stderr/stdout, and for start failures the tail of the server log.
        detail: String,
    },
    /// Running as root, but neither a `postgres` nor a `nobody` user exists.
    #[error(
        "running as root, but neither a `postgres` nor a `nobody` user exists to run \
         PostgreSQL as (PostgreSQL refuses to run as root)"
    )]
    NoRuntimeUser,
    /// The unprivileged runtime user cannot reach the data directory.
    #[error(
        "PostgreSQL runs as user `{user}`, which cannot enter {path}; choose a data \
         directory that user can reach (e.g. make its parents world-executable)"
    )]
    Inaccessible {
        /// The runtime user.
        user: String,
        /// The first directory on the way that it cannot enter.
        path: PathBuf,
    },
    /// The cluster exists but its password file is gone, so we cannot log in.
    #[error(
        "the cluster in {pgdata} exists but its password file {password_file} is missing; \
         restore the file or remove the data directory to start over"
    )]
    MissingPassword {
        /// The cluster directory.
        pgdata: PathBuf,
        /// Where the password was expected.
        password_file: PathBuf,
    },
    /// The data directory path contains characters `pg_ctl` cannot pass through its shell.
    #[error("unsupported character in data directory path {0} (avoid \" $ ` \\ and newlines)")]
    UnsupportedPath(PathBuf),
    /// Connecting to the cluster or creating the database failed.
    #[error("database setup failed: {0}")]
    Database(String),
}

/// A running private PostgreSQL cluster; stopped on [`EmbeddedPostgres::stop`] or drop.
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    pgdata: PathBuf,
    run_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    password: String,
    /// The application role's password (`pg-app-password`).
    app_password: String,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
    stopped: bool,
}

impl fmt::Debug for EmbeddedPostgres {
    // Hand-written so the password never ends up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedPostgres")
            .field("data_dir", &self.data_dir)
            .field("port", &self.port)
            .field("bin_dir", &self.bin_dir)
            .field("run_as", &self.run_as.as_ref().map(|u| &u.name))
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl EmbeddedPostgres {
    /// Initialise (first time) and start the cluster under `data_dir`.
    ///
    /// Creates `data_dir` if needed, runs `initdb` once, starts the server on a
    /// free port on 127.0.0.1 and makes sure the `finvision` database exists.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let path_var = std::env::var_os("PATH");
        let bin_dir = find_binaries(path_var.as_deref(), Path::new(LIB_ROOT))?;
        let run_as = runtime_user()?;

        fs::create_dir_all(data_dir)
            .map_err(|e| io_err(format!("creating {}", data_dir.display()), e))?;
        // Absolute, because the commands run with a different working directory.
        let data_dir = fs::canonicalize(data_dir)
            .map_err(|e| io_err(format!("resolving {}", data_dir.display()), e))?;
        check_path_chars(&data_dir)?;

        let mut pg = EmbeddedPostgres {
            pgdata: data_dir.join("pgdata"),
            run_dir: data_dir.join("run"),
            log_file: data_dir.join("postgres.log"),
            data_dir,
            port: 0,
            password: String::new(),
            app_password: String::new(),
            bin_dir,
            run_as,
            stopped: true,
        };
        pg.prepare_dirs()?;
        pg.password = pg.load_or_create_password()?;
        pg.app_password = pg.load_or_create_app_password()?;
        if !pg.pgdata.join("PG_VERSION").is_file() {
            pg.initdb().await?;
        }
        pg.fix_ownership()?;
        pg.handle_leftover_postmaster().await?;
        pg.start_server().await?;
        pg.stopped = false;

        if let Err(e) = pg.ensure_database().await {
            // Do not leave a server behind that nobody will use.
            if let Err(stop_err) = pg.stop().await {
                tracing::warn!(error = %stop_err, "stopping embedded PostgreSQL after failed setup");
            }
            return Err(e);
        }
        tracing::info!(
            data_dir = %pg.data_dir.display(),
            port = pg.port,
            bin_dir = %pg.bin_dir.display(),
            run_as = pg.run_as.as_ref().map(|u| u.name.as_str()).unwrap_or("current user"),
            "embedded PostgreSQL running on 127.0.0.1"
        );
        Ok(pg)
    }

    /// `postgres://finvision:<pw>@127.0.0.1:<port>/finvision`.
    ///
    /// The password is alphanumeric, so no percent-encoding is needed.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// `postgres://finvision_app:<pw>@127.0.0.1:<port>/finvision`: the application role, which
    /// owns no table and is subject to row-level security (the server's connections).
    pub fn app_database_url(&self) -> String {
        format!(
            "postgres://{APP_ROLE}:{}@127.0.0.1:{}/{DATABASE}",
            self.app_password, self.port
        )
    }

    /// URL of the maintenance database `postgres` (for `CREATE DATABASE` of test databases).
    pub fn admin_url(&self) -> String {
        self.url_for("postgres")
    }

    /// The data directory given to [`EmbeddedPostgres::start`] (absolute).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of the PostgreSQL binaries the cluster runs (`pg_dump` and `pg_restore` of
    /// the same installation live there too).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop the server with `pg_ctl stop -m fast`; calling it again does nothing.
    pub async fn stop(&mut self) -> Result<(), EmbeddedError> {
        if self.stopped {
            return Ok(());
        }
        self.pg_ctl_stop("fast").await?;
        self.stopped = true;
        tracing::info!(data_dir = %self.data_dir.display(), "embedded PostgreSQL stopped");
        Ok(())
    }

    /// Blocking immediate stop usable from `Drop` or an exit handler.
    ///
    /// Runs `pg_ctl stop -m immediate`; if that fails, sends SIGQUIT to the
    /// postmaster named in `postmaster.pid`. The next start then runs crash
    /// recovery, which is quick for a cluster this size. Errors are logged
    /// because there is nobody to return them to.
    pub fn stop_blocking(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let mut cmd = std::process::Command::new(self.bin_dir.join("pg_ctl"));
        cmd.arg("stop")
            .args(["-m", "immediate", "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"])
            .arg(&self.pgdata)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.configure_std(&mut cmd);
        match cmd.output() {
            Ok(out) if out.status.success() => {
                tracing::info!(data_dir = %self.data_dir.display(), "embedded PostgreSQL stopped (immediate)");
                return;
            }
            Ok(out) => tracing::warn!(
                status = %out.status,
                stderr = %String::from_utf8_lossy(&out.stderr).trim(),
                "pg_ctl stop -m immediate failed; signalling the postmaster"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "running pg_ctl failed; signalling the postmaster")
            }
        }
        if let Some(pid) = read_postmaster_pid(&self.pgdata) {
            // SIGQUIT is PostgreSQL's "immediate shutdown" signal.
            if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT) {
                tracing::warn!(error = %e, pid = pid.as_raw(), "could not signal the postmaster");
            }
        }
    }

    fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        // Blocks briefly; fine even inside a runtime since it happens once at shutdown.
        self.stop_blocking();
    }
}

fn io_err(context: String, source: io::Error) -> EmbeddedError {
    EmbeddedError::Io(context, source)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    use nix::unistd::Uid;

    use super::process::process_alive;
    use super::*;

    pub(super) fn temp_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("fv-pg-")
            .tempdir()
            .expect("temp dir")
    }

    async fn query_i64(url: &str, sql: &str) -> i64 {
        let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
        diesel::select(diesel::dsl::sql::<BigInt>(sql))
            .get_result(&mut conn)
            .await
            .expect("query")
    }

    #[tokio::test]
    async fn start_connect_select_stop() {
        let dir = temp_dir();
        let mut pg = EmbeddedPostgres::start(dir.path()).await.expect("start");
        assert!(pg.database_url().starts_with("postgres://finvision:"));
        assert!(
            pg.database_url()
                .ends_with(&format!("@127.0.0.1:{}/finvision", pg.port()))
        );
        assert_eq!(query_i64(&pg.database_url(), "1::int8").await, 1);
        assert_eq!(query_i64(&pg.admin_url(), "1::int8").await, 1);

        let pw_mode = fs::metadata(dir.path().join("pg-password")).unwrap().mode();
        assert_eq!(pw_mode & 0o777, 0o600);
        assert!(pg.password.len() >= 32);
        assert!(!format!("{pg:?}").contains(&pg.password));
        if Uid::effective().is_root() {
            let owner = fs::metadata(pg.pgdata.clone()).unwrap().uid();
            assert_eq!(Some(owner), pg.run_as.as_ref().map(|u| u.uid.as_raw()));
            assert_ne!(owner, 0);
        }

        pg.stop().await.expect("stop");
        pg.stop().await.expect("second stop is a no-op");
        assert!(!dir.path().join("pgdata/postmaster.pid").exists());
    }

    #[tokio::test]
    async fn restart_reuses_cluster() {
        let dir = temp_dir();
        let mut pg = EmbeddedPostgres::start(dir.path())
            .await
            .expect("first start");
        let password = pg.password.clone();
        {
            let mut conn = AsyncPgConnection::establish(&pg.database_url())
                .await
                .expect("connect");
            diesel::sql_query("CREATE TABLE kept (id int8 PRIMARY KEY)")
                .execute(&mut conn)
                .await
                .expect("create table");
            diesel::sql_query("INSERT INTO kept VALUES (42)")
                .execute(&mut conn)
                .await
                .expect("insert");
        }
        pg.stop().await.expect("stop");
        drop(pg);

        let mut pg = EmbeddedPostgres::start(dir.path())
            .await
            .expect("second start");
        assert_eq!(pg.password, password, "password is persisted");
        assert_eq!(
            query_i64(&pg.database_url(), "(SELECT sum(id)::int8 FROM kept)").await,
            42
        );
        pg.stop().await.expect("stop");
    }

    #[tokio::test]
    async fn leftover_server_is_replaced_and_drop_stops() {
        let dir = temp_dir();
        let mut first = EmbeddedPostgres::start(dir.path())
            .await
            .expect("first start");
        let old_pid = read_postmaster_pid(&first.pgdata).expect("pid file");
        // Simulate a crash of the owning process: forget the server without stopping it.
        first.stopped = true;
        drop(first);

        let second = EmbeddedPostgres::start(dir.path())
            .await
            .expect("restart over leftover");
        let new_pid = read_postmaster_pid(&second.pgdata).expect("pid file");
        assert_ne!(old_pid, new_pid);
        assert_eq!(query_i64(&second.database_url(), "1::int8").await, 1);

        // Drop alone (no explicit stop) shuts the server down.
        let pgdata = second.pgdata.clone();
        drop(second);
        assert!(!pgdata.join("postmaster.pid").exists());
    }

    #[tokio::test]
    async fn start_after_killed_postmaster() {
        let dir = temp_dir();
        let mut first = EmbeddedPostgres::start(dir.path())
            .await
            .expect("first start");
        let pid = read_postmaster_pid(&first.pgdata).expect("pid file");
        first.stopped = true;
        drop(first);
        // A hard crash: the stale postmaster.pid stays behind.
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill");
        for _ in 0..100 {
            if !process_alive(pid) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(dir.path().join("pgdata/postmaster.pid").exists());

        let mut pg = EmbeddedPostgres::start(dir.path())
            .await
            .expect("start after crash");
        assert_eq!(query_i64(&pg.database_url(), "1::int8").await, 1);
        pg.stop().await.expect("stop");
    }

    #[tokio::test]
    async fn long_data_dir_falls_back_to_tcp_only() {
        let dir = temp_dir();
        let long = dir.path().join("a".repeat(60)).join("b".repeat(40));
        let mut pg = EmbeddedPostgres::start(&long).await.expect("start");
        assert_eq!(pg.socket_dir_setting(), "");
        assert_eq!(query_i64(&pg.database_url(), "1::int8").await, 1);
        pg.stop().await.expect("stop");
    }
}
