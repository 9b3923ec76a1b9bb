//! Running PostgreSQL: `initdb` into a staging directory, `pg_ctl start` on a free port (retried
//! when the port is taken meanwhile), `pg_ctl stop`, and creating the application database.
//! Every command runs from `run/` as the runtime user, without the caller's libpq variables.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Output, Stdio};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::ownership::{chown, set_mode, write_secret};
use super::{APP_ROLE, DATABASE, EmbeddedError, EmbeddedPostgres, SUPERUSER, io_err};

/// `sun_path` is 108 bytes on Linux including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Seconds `pg_ctl` waits for start/stop to complete.
pub(super) const PG_CTL_TIMEOUT_SECS: &str = "60";
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

impl EmbeddedPostgres {
    /// Run `initdb` into `pgdata.initdb` and rename it to `pgdata` on success,
    /// so `pgdata/PG_VERSION` only ever exists for a complete cluster.
    pub(super) async fn initdb(&self) -> Result<(), EmbeddedError> {
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

    /// `pg_ctl start -w` on a fresh free port, retrying if the port got taken.
    pub(super) async fn start_server(&mut self) -> Result<(), EmbeddedError> {
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
    pub(super) fn socket_dir_setting(&self) -> String {
        let dir = self.run_dir.to_string_lossy().into_owned();
        // "/.s.PGSQL.65535" is 15 bytes; the lock file adds ".lock".
        if dir.len() + 15 + 5 > MAX_SOCKET_PATH {
            tracing::info!("data directory path too long for a unix socket; using TCP only");
            String::new()
        } else {
            dir
        }
    }

    pub(super) async fn pg_ctl_stop(&self, mode: &str) -> Result<(), EmbeddedError> {
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

    pub(super) async fn ensure_database(&self) -> Result<(), EmbeddedError> {
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
        // The role the server runs as: created here (the migrations grant to it), its password
        // set again at each start from `pg-app-password`. Alphanumeric: nothing to quote.
        let app_role = format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN \
                 CREATE ROLE {APP_ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; \
               END IF; \
             END $$; \
             ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{}'",
            self.app_password
        );
        conn.batch_execute(&app_role)
            .await
            .map_err(|e| EmbeddedError::Database(format!("creating role {APP_ROLE}: {e}")))?;
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
    pub(super) fn configure_std(&self, cmd: &mut std::process::Command) {
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

/// pg_ctl hands paths to `/bin/sh` inside double quotes, so these would break it.
pub(super) fn check_path_chars(path: &Path) -> Result<(), EmbeddedError> {
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

pub(super) fn read_postmaster_pid(pgdata: &Path) -> Option<nix::unistd::Pid> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    // A negative pid in the file marks a single-user backend; never ours.
    (pid > 0).then(|| nix::unistd::Pid::from_raw(pid))
}

/// Whether a process with this pid exists (EPERM: exists, owned by someone else).
pub(super) fn process_alive(pid: nix::unistd::Pid) -> bool {
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

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/a b/run"), "'/a b/run'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
