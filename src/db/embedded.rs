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

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use nix::unistd::{Gid, Uid, User};
use rand::Rng;

/// Name of the cluster superuser and of the application database.
const SUPERUSER: &str = "finvision";
/// Application database created after the first start.
const DATABASE: &str = "finvision";
/// Length of the generated superuser password (alphanumeric, so URL-safe).
const PASSWORD_LEN: usize = 40;
/// Where distribution packages (Debian/Ubuntu) install versioned binaries.
const LIB_ROOT: &str = "/usr/lib/postgresql";
/// Binaries that must all be present in one directory.
const BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// `sun_path` is 108 bytes on Linux including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Seconds `pg_ctl` waits for start/stop to complete.
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// Attempts to start when the chosen port was taken in the meantime.
const START_ATTEMPTS: usize = 3;
/// libpq variables that would otherwise leak into the commands we run.
const PG_ENV_VARS: [&str; 8] = [
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGOPTIONS",
];

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

/// The unprivileged user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: Uid,
    gid: Gid,
}

/// A running private PostgreSQL cluster; stopped on [`EmbeddedPostgres::stop`] or drop.
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    pgdata: PathBuf,
    run_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    password: String,
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
            bin_dir,
            run_as,
            stopped: true,
        };
        pg.prepare_dirs()?;
        pg.password = pg.load_or_create_password()?;
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

    /// URL of the maintenance database `postgres` (for `CREATE DATABASE` of test databases).
    pub fn admin_url(&self) -> String {
        self.url_for("postgres")
    }

    /// The data directory given to [`EmbeddedPostgres::start`] (absolute).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
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

    /// Create `run/` and the log file, and let the runtime user reach them.
    fn prepare_dirs(&self) -> Result<(), EmbeddedError> {
        fs::create_dir_all(&self.run_dir)
            .map_err(|e| io_err(format!("creating {}", self.run_dir.display()), e))?;
        set_mode(&self.run_dir, 0o700)?;
        if !self.log_file.exists() {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.log_file)
                .map_err(|e| io_err(format!("creating {}", self.log_file.display()), e))?;
        }
        if let Some(user) = &self.run_as {
            // The runtime user only needs to pass through data_dir (not list it);
            // pg-password stays 0600 root-only.
            let mode = fs::metadata(&self.data_dir)
                .map_err(|e| io_err(format!("reading {}", self.data_dir.display()), e))?
                .permissions()
                .mode();
            if mode & 0o001 == 0 {
                set_mode(&self.data_dir, (mode & 0o7777) | 0o001)?;
            }
            check_traversable(&self.data_dir, user)?;
            chown(&self.run_dir, user)?;
            chown(&self.log_file, user)?;
        }
        Ok(())
    }

    /// Read the persisted password, or generate and persist a new one.
    fn load_or_create_password(&self) -> Result<String, EmbeddedError> {
        let file = self.data_dir.join("pg-password");
        match fs::read_to_string(&file) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("reading {}", file.display()), e)),
        }
        if self.pgdata.join("PG_VERSION").is_file() {
            return Err(EmbeddedError::MissingPassword {
                pgdata: self.pgdata.clone(),
                password_file: file,
            });
        }
        let password: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(PASSWORD_LEN)
            .map(char::from)
            .collect();
        // Write then rename so a crash never leaves a truncated password behind.
        let tmp = self.data_dir.join("pg-password.tmp");
        write_secret(&tmp, &password)?;
        fs::rename(&tmp, &file).map_err(|e| {
            io_err(
                format!("renaming {} to {}", tmp.display(), file.display()),
                e,
            )
        })?;
        Ok(password)
    }

    /// Run `initdb` into `pgdata.initdb` and rename it to `pgdata` on success,
    /// so `pgdata/PG_VERSION` only ever exists for a complete cluster.
    async fn initdb(&self) -> Result<(), EmbeddedError> {
        let staging = self.data_dir.join("pgdata.initdb");
        if staging.exists() {
            // Left over from an interrupted initdb of ours; it holds no data.
            fs::remove_dir_all(&staging)
                .map_err(|e| io_err(format!("removing {}", staging.display()), e))?;
        }
        if self.pgdata.exists() {
            let empty = fs::read_dir(&self.pgdata)
                .map_err(|e| io_err(format!("reading {}", self.pgdata.display()), e))?
                .next()
                .is_none();
            if !empty {
                return Err(EmbeddedError::Io(
                    format!(
                        "{} is not empty but holds no cluster (no PG_VERSION); refusing to touch it",
                        self.pgdata.display()
                    ),
                    io::Error::from(io::ErrorKind::AlreadyExists),
                ));
            }
            fs::remove_dir(&self.pgdata)
                .map_err(|e| io_err(format!("removing {}", self.pgdata.display()), e))?;
        }
        fs::create_dir(&staging)
            .map_err(|e| io_err(format!("creating {}", staging.display()), e))?;
        set_mode(&staging, 0o700)?;
        // initdb runs as the runtime user and must be able to read the password,
        // so it gets its own short-lived copy in run/, which that user owns.
        let pwfile = self.run_dir.join("initdb-pwfile");
        write_secret(&pwfile, &self.password)?;
        if let Some(user) = &self.run_as {
            chown(&staging, user)?;
            chown(&pwfile, user)?;
        }
        tracing::info!(pgdata = %self.pgdata.display(), "initialising embedded PostgreSQL cluster");
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&staging)
            .args(["-E", "UTF8", "--no-locale", "-U", SUPERUSER])
            .arg("--auth=scram-sha-256")
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(cmd, "initdb").await;
        let _ = fs::remove_file(&pwfile);
        result?;
        fs::rename(&staging, &self.pgdata).map_err(|e| {
            io_err(
                format!(
                    "renaming {} to {}",
                    staging.display(),
                    self.pgdata.display()
                ),
                e,
            )
        })?;
        Ok(())
    }

    /// When root, make sure the cluster belongs to the runtime user (it may
    /// have been created by a different one, e.g. `nobody` before `postgres`
    /// existed).
    fn fix_ownership(&self) -> Result<(), EmbeddedError> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let meta = fs::metadata(&self.pgdata)
            .map_err(|e| io_err(format!("reading {}", self.pgdata.display()), e))?;
        if meta.uid() != user.uid.as_raw() || meta.gid() != user.gid.as_raw() {
            tracing::info!(user = %user.name, "changing owner of the embedded cluster");
            chown_recursive(&self.pgdata, user)?;
        }
        Ok(())
    }

    /// Deal with a `postmaster.pid` left by a previous run (see module docs).
    async fn handle_leftover_postmaster(&self) -> Result<(), EmbeddedError> {
        let Some(pid) = read_postmaster_pid(&self.pgdata) else {
            return Ok(());
        };
        if !process_alive(pid) {
            // A dead postmaster's lock file: postgres itself cleans this up.
            return Ok(());
        }
        let is_postgres = fs::read_link(format!("/proc/{}/exe", pid.as_raw()))
            .ok()
            .and_then(|exe| exe.file_name().map(|n| n == "postgres"))
            .unwrap_or(false);
        if is_postgres {
            tracing::warn!(
                pid = pid.as_raw(),
                data_dir = %self.data_dir.display(),
                "a PostgreSQL server from a previous run is still running on the data directory; stopping it"
            );
            self.pg_ctl_stop("fast").await
        } else {
            // The pid was reused by an unrelated process after a crash; the
            // lock file is stale and postgres would refuse to start over it.
            tracing::warn!(pid = pid.as_raw(), "removing stale postmaster.pid");
            let file = self.pgdata.join("postmaster.pid");
            fs::remove_file(&file).map_err(|e| io_err(format!("removing {}", file.display()), e))
        }
    }

    /// `pg_ctl start -w` on a fresh free port, retrying if the port got taken.
    async fn start_server(&mut self) -> Result<(), EmbeddedError> {
        let socket_dir = self.socket_dir_setting();
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            self.port = free_port()?;
            let log_len = fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0);
            let options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
                self.port,
                sh_quote(&socket_dir)
            );
            let mut cmd = self.command("pg_ctl");
            cmd.arg("start")
                .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"])
                .arg(&self.pgdata)
                .arg("-l")
                .arg(&self.log_file)
                .arg("-o")
                .arg(options);
            match run(cmd, "pg_ctl start").await {
                Ok(_) => return Ok(()),
                Err(EmbeddedError::Command {
                    program,
                    status,
                    detail,
                }) => {
                    let log = log_tail(&self.log_file, log_len);
                    let port_taken =
                        log.contains("could not bind") || log.contains("Address already in use");
                    last_err = Some(EmbeddedError::Command {
                        program,
                        status,
                        detail: format!("{detail}\nserver log:\n{log}"),
                    });
                    if !port_taken {
                        break;
                    }
                    tracing::warn!(port = self.port, "port was taken; retrying with another");
                }
                Err(e) => return Err(e),
            }
        }
        // The loop body records an error before every exit that gets here.
        Err(last_err.unwrap_or_else(|| EmbeddedError::Command {
            program: "pg_ctl start".into(),
            status: "not run".into(),
            detail: String::new(),
        }))
    }

    /// `run/` for unix sockets, or '' (disabled) when the socket path would be
    /// longer than the kernel allows; we connect over TCP anyway.
    fn socket_dir_setting(&self) -> String {
        let dir = self.run_dir.to_string_lossy().into_owned();
        // "/.s.PGSQL.65535" is 15 bytes; the lock file adds ".lock".
        if dir.len() + 15 + 5 > MAX_SOCKET_PATH {
            tracing::info!("data directory path too long for a unix socket; using TCP only");
            String::new()
        } else {
            dir
        }
    }

    async fn pg_ctl_stop(&self, mode: &str) -> Result<(), EmbeddedError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .args(["-m", mode, "-w", "-t", PG_CTL_TIMEOUT_SECS, "-D"])
            .arg(&self.pgdata);
        match run(cmd, "pg_ctl stop").await {
            Ok(_) => Ok(()),
            // Already gone (e.g. stopped or crashed): that is what we wanted.
            Err(_) if !read_postmaster_pid(&self.pgdata).is_some_and(process_alive) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ensure_database(&self) -> Result<(), EmbeddedError> {
        use diesel::sql_types::Bool;
        let mut conn = AsyncPgConnection::establish(&self.admin_url())
            .await
            .map_err(|e| {
                EmbeddedError::Database(format!("connecting to 127.0.0.1:{}: {e}", self.port))
            })?;
        let exists: bool = diesel::select(diesel::dsl::sql::<Bool>(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = 'finvision')",
        ))
        .get_result(&mut conn)
        .await
        .map_err(|e| EmbeddedError::Database(format!("looking up database {DATABASE}: {e}")))?;
        if !exists {
            diesel::sql_query(format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await
                .map_err(|e| {
                    EmbeddedError::Database(format!("creating database {DATABASE}: {e}"))
                })?;
            tracing::info!(database = DATABASE, "created database");
        }
        Ok(())
    }

    /// A command for one of the PostgreSQL binaries, run as the runtime user.
    fn command(&self, binary: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.bin_dir.join(binary));
        cmd.current_dir(&self.run_dir)
            .env("HOME", &self.run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        for var in PG_ENV_VARS {
            cmd.env_remove(var);
        }
        if let Some(user) = &self.run_as {
            // std drops supplementary groups (setgroups(0)) before setuid.
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd
    }

    /// The same settings as [`Self::command`] for the blocking path.
    fn configure_std(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.current_dir(&self.run_dir).env("HOME", &self.run_dir);
        for var in PG_ENV_VARS {
            cmd.env_remove(var);
        }
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        // Blocks briefly; fine even inside a runtime since it happens once at shutdown.
        self.stop_blocking();
    }
}

/// Find a directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// Looks on `path_var` (a `PATH`-style value) first, then under
/// `<lib_root>/<version>/bin`, highest version first. Symlinks on PATH (e.g.
/// `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`) are resolved
/// so that all three binaries come from the same installation.
pub fn find_binaries(path_var: Option<&OsStr>, lib_root: &Path) -> Result<PathBuf, EmbeddedError> {
    let has_all = |dir: &Path| BINARIES.iter().all(|b| is_executable(&dir.join(b)));
    if let Some(path_var) = path_var {
        for dir in std::env::split_paths(path_var) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            let initdb = dir.join("initdb");
            if !is_executable(&initdb) {
                continue;
            }
            if let Some(real_dir) = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                && has_all(&real_dir)
            {
                return Ok(real_dir);
            }
            if has_all(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(Vec<u64>, PathBuf)> = fs::read_dir(lib_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(&name)?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions
        .into_iter()
        .map(|(_, dir)| dir)
        .find(|dir| has_all(dir))
        .ok_or(EmbeddedError::NoBinaries)
}

/// "15" -> [15], "9.6" -> [9, 6]; anything else is not a version directory.
fn parse_version(name: &OsStr) -> Option<Vec<u64>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `None` unless we are root; then `postgres`, else `nobody`.
fn runtime_user() -> Result<Option<RunAs>, EmbeddedError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some(RunAs {
                name: user.name,
                uid: user.uid,
                gid: user.gid,
            }));
        }
    }
    Err(EmbeddedError::NoRuntimeUser)
}

/// pg_ctl hands paths to `/bin/sh` inside double quotes, so these would break it.
fn check_path_chars(path: &Path) -> Result<(), EmbeddedError> {
    let s = path.to_string_lossy();
    if s.chars()
        .any(|c| matches!(c, '"' | '$' | '`' | '\\' | '\n'))
    {
        return Err(EmbeddedError::UnsupportedPath(path.to_path_buf()));
    }
    Ok(())
}

/// Quote for `/bin/sh`, which pg_ctl uses to run the `-o` options.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Check that `user` can enter every directory from `/` down to `dir`.
///
/// Only the primary group counts, since supplementary groups are dropped.
fn check_traversable(dir: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor)
            .map_err(|e| io_err(format!("reading {}", ancestor.display()), e))?;
        let mode = meta.mode();
        let ok = if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Err(EmbeddedError::Inaccessible {
                user: user.name.clone(),
                path: ancestor.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn free_port() -> Result<u16, EmbeddedError> {
    // The listener is dropped before postgres binds, so another process could
    // grab the port in between; start_server retries in that case.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| io_err("binding 127.0.0.1:0 to find a free port".into(), e))?;
    let port = listener
        .local_addr()
        .map_err(|e| io_err("reading the free port".into(), e))?
        .port();
    Ok(port)
}

fn read_postmaster_pid(pgdata: &Path) -> Option<nix::unistd::Pid> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    // A negative pid in the file marks a single-user backend; never ours.
    (pid > 0).then(|| nix::unistd::Pid::from_raw(pid))
}

/// Whether a process with this pid exists (EPERM: exists, owned by someone else).
fn process_alive(pid: nix::unistd::Pid) -> bool {
    matches!(
        nix::sys::signal::kill(pid, None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    )
}

/// The part of the log written since `from`, at most the last 30 lines.
fn log_tail(log_file: &Path, from: u64) -> String {
    let Ok(bytes) = fs::read(log_file) else {
        return String::new();
    };
    let start = usize::try_from(from).unwrap_or(0).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn write_secret(path: &Path, secret: &str) -> Result<(), EmbeddedError> {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(format!("creating {}", path.display()), e))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(format!("writing {}", path.display()), e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EmbeddedError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(format!("setting permissions of {}", path.display()), e))
}

fn chown(path: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    nix::unistd::chown(path, Some(user.uid), Some(user.gid)).map_err(|e| {
        io_err(
            format!("changing owner of {} to {}", path.display(), user.name),
            io::Error::from(e),
        )
    })
}

fn chown_recursive(path: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    // lchown semantics: never follow symlinks out of the cluster.
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(user.uid),
        Some(user.gid),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| {
        io_err(
            format!("changing owner of {}", path.display()),
            io::Error::from(e),
        )
    })?;
    let meta =
        fs::symlink_metadata(path).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
    if meta.is_dir() {
        let entries =
            fs::read_dir(path).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(format!("reading {}", path.display()), e))?;
            chown_recursive(&entry.path(), user)?;
        }
    }
    Ok(())
}

fn io_err(context: String, source: io::Error) -> EmbeddedError {
    EmbeddedError::Io(context, source)
}

/// Run a command to completion, turning a non-zero exit into [`EmbeddedError::Command`].
async fn run(mut cmd: tokio::process::Command, what: &str) -> Result<Output, EmbeddedError> {
    let out = cmd
        .output()
        .await
        .map_err(|e| io_err(format!("running {what}"), e))?;
    if out.status.success() {
        return Ok(out);
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        detail.push('\n');
        detail.push_str(stdout.trim());
    }
    Err(EmbeddedError::Command {
        program: what.to_owned(),
        status: out.status.to_string(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::BigInt;

    fn temp_dir() -> tempfile::TempDir {
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

    #[tokio::test]
    async fn unreachable_data_dir_is_reported_when_root() {
        let Ok(Some(user)) = runtime_user() else {
            return; // Not root: the runtime user is ourselves.
        };
        let dir = temp_dir();
        set_mode(dir.path(), 0o700).unwrap();
        let err = EmbeddedPostgres::start(&dir.path().join("data"))
            .await
            .unwrap_err();
        match err {
            EmbeddedError::Inaccessible { user: name, path } => {
                assert_eq!(name, user.name);
                assert_eq!(path, fs::canonicalize(dir.path()).unwrap());
            }
            other => panic!("unexpected error: {other}"),
        }
    }

    #[test]
    fn no_binaries_error_names_both_remedies() {
        let empty = temp_dir();
        let err = find_binaries(Some(OsStr::new("")), empty.path()).unwrap_err();
        assert!(matches!(err, EmbeddedError::NoBinaries));
        let msg = err.to_string();
        assert!(msg.contains("not found"), "{msg}");
        assert!(msg.contains("apt-get install postgresql"), "{msg}");
        assert!(msg.contains("DATABASE_URL"), "{msg}");
        let err = find_binaries(None, &empty.path().join("missing")).unwrap_err();
        assert!(matches!(err, EmbeddedError::NoBinaries));
    }

    #[test]
    fn binaries_prefer_path_then_highest_version() {
        let root = temp_dir();
        let fake = |dir: &Path, names: &[&str]| {
            fs::create_dir_all(dir).unwrap();
            for name in names {
                let file = dir.join(name);
                fs::write(&file, "#!/bin/sh\n").unwrap();
                set_mode(&file, 0o755).unwrap();
            }
        };
        fake(&root.path().join("9.6/bin"), &BINARIES);
        fake(&root.path().join("15/bin"), &BINARIES);
        // Incomplete installation: must be skipped despite the higher version.
        fake(&root.path().join("16/bin"), &["initdb", "pg_ctl"]);
        fake(&root.path().join("notaversion/bin"), &BINARIES);
        assert_eq!(
            find_binaries(Some(OsStr::new("")), root.path()).unwrap(),
            root.path().join("15/bin")
        );

        let on_path = root.path().join("onpath");
        fake(&on_path, &BINARIES);
        let path_var =
            std::env::join_paths([root.path().join("nothing"), on_path.clone()]).unwrap();
        assert_eq!(
            find_binaries(Some(&path_var), root.path()).unwrap(),
            fs::canonicalize(&on_path).unwrap()
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/a b/run"), "'/a b/run'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
