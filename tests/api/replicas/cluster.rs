//! Private PostgreSQL clusters on loopback for the replica and failover tests: a primary made
//! by `initdb`, and hot standbys made from it by `pg_basebackup -R` (streaming replication),
//! from the machine's PostgreSQL binaries. Each lives in a temporary directory and is stopped
//! (immediate mode) and removed when dropped. As root, the commands run as `postgres`, since
//! PostgreSQL refuses to run as root.

use std::{
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// One running cluster (primary or standby).
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Whether `stop` was called (then drop has nothing to stop).
    stopped: bool,
}

/// The directory of `initdb`, `pg_ctl`, `pg_basebackup`: `FV_TEST_PG_BIN`, else the newest under
/// `/usr/lib/postgresql`, else the PATH's.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FV_TEST_PG_BIN")
        && !dir.is_empty()
    {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_basebackup")
                .is_file()
                .then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("pg_basebackup").is_file())
        .expect(
            "the replica tests need PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup)",
        )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The account PostgreSQL runs as: ourselves, or `postgres` when we are root.
fn runtime_user() -> Option<nix::unistd::User> {
    if nix::unistd::geteuid().is_root() {
        Some(
            nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("as root, the replica tests run PostgreSQL as the `postgres` account"),
        )
    } else {
        None
    }
}

fn run(bin: &Path, program: &str, args: &[&str]) {
    let mut command = Command::new(bin.join(program));
    command.args(args).stdin(Stdio::null());
    if let Some(user) = runtime_user() {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A temporary directory the runtime user owns.
fn owned_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a directory for a test cluster");
    if let Some(user) = runtime_user() {
        nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown");
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

/// Settings of every cluster of these tests, primary and standbys alike (a base backup copies
/// them). `fsync = off`: the tests stop servers, they do not crash machines.
const SETTINGS: &str = "
wal_level = replica
max_wal_senders = 8
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
fsync = off
full_page_writes = off
max_connections = 200
wal_receiver_status_interval = '1s'
";

impl Cluster {
    /// A new primary, started.
    pub fn primary() -> Self {
        let bin = bin_dir();
        let dir = owned_dir("fv-test-primary-");
        let data = dir.path().join("data");
        run(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().expect("path"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(SETTINGS);
        std::fs::write(&conf, text).expect("postgresql.conf");
        let mut cluster = Self {
            bin,
            dir,
            port: free_port(),
            stopped: true,
        };
        cluster.start("");
        cluster
    }

    /// A hot standby of `primary`, streaming from it, started.
    pub fn standby_of(primary: &Cluster) -> Self {
        let bin = bin_dir();
        let dir = owned_dir("fv-test-standby-");
        let data = dir.path().join("data");
        let port = primary.port.to_string();
        run(
            &bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                data.to_str().expect("path"),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        let mut cluster = Self {
            bin,
            dir,
            port: free_port(),
            stopped: true,
        };
        cluster.start("");
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&mut self, extra: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} {extra}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("path"),
                "-l",
                log.to_str().expect("path"),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.stopped = false;
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stop at once, as a crash would (`pg_ctl stop -m immediate`): no shutdown checkpoint, the
    /// clients' connections cut.
    pub fn crash(&mut self) {
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("path"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        self.stopped = true;
    }

    /// Promote this standby to a primary (`pg_ctl promote`), waiting until it accepts writes.
    pub fn promote(&self) {
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("path"),
                "-w",
                "-t",
                "60",
                "promote",
            ],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.stopped {
            let mut command = Command::new(self.bin.join("pg_ctl"));
            command
                .args([
                    "-D",
                    &self.data().to_string_lossy(),
                    "-m",
                    "immediate",
                    "stop",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(user) = runtime_user() {
                command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            }
            let _ = command.status();
        }
    }
}
