//! The README's point-in-time recovery drill, run for real on a private cluster on loopback:
//! `initdb` with `archive_command` copying WAL to a directory, a base backup, writes, the time
//! noted, more writes; then the base backup restored with `restore_command`,
//! `recovery_target_time` and `recovery.signal`, and only the first writes found.
//! Needs PostgreSQL's server binaries, hence the `engines` feature.
#![cfg(feature = "engines")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The directory of `initdb`, `pg_ctl`, `pg_basebackup`, `psql`: `FV_TEST_PG_BIN`, else the
/// newest under `/usr/lib/postgresql`, else the PATH's (as the replica tests find them).
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
        .expect("the drill needs PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The account PostgreSQL runs as: ourselves, or `postgres` when we are root.
fn runtime_user() -> Option<nix::unistd::User> {
    nix::unistd::geteuid().is_root().then(|| {
        nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("as root, the drill runs PostgreSQL as the `postgres` account")
    })
}

/// Run a PostgreSQL program as the runtime account; panics with its output on failure.
fn run(bin: &Path, program: &str, args: &[&str]) {
    use std::os::unix::process::CommandExt;
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

/// A directory the runtime account owns, mode 0700.
fn own(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(user) = runtime_user() {
        nix::unistd::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
}

fn owned_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a directory for the drill");
    own(dir.path());
    dir
}

/// One started cluster of the drill; stopped (immediate) when dropped.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    running: bool,
}

impl Server {
    fn start(bin: &Path, data: PathBuf, socket_dir: &Path) -> Self {
        let mut server = Self {
            bin: bin.to_path_buf(),
            log: data.with_extension("log"),
            data,
            socket_dir: socket_dir.to_path_buf(),
            port: free_port(),
            running: false,
        };
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            server.port,
            server.socket_dir.display()
        );
        run(
            &server.bin,
            "pg_ctl",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-l",
                server.log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        server.running = true;
        server
    }

    /// One statement through `psql`; its unaligned output.
    fn sql(&self, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn stop(&mut self) {
        run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        self.running = false;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.running {
            let mut command = Command::new(self.bin.join("pg_ctl"));
            command
                .args([
                    "-D",
                    &self.data.to_string_lossy(),
                    "-m",
                    "immediate",
                    "stop",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(user) = runtime_user() {
                use std::os::unix::process::CommandExt;
                command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            }
            let _ = command.status();
        }
    }
}

/// A directory the runtime account owns (the archive: `archive_command` writes there).
fn owned_subdir(path: &Path) {
    std::fs::create_dir(path).expect("create the directory");
    own(path);
}

fn append(file: &Path, text: &str) {
    let mut content = std::fs::read_to_string(file).expect("read the configuration");
    content.push_str(text);
    std::fs::write(file, content).expect("write the configuration");
}

/// Poll `check` every 50 ms for at most 30 s.
fn wait_for(what: &str, server: &Server, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn recovery_to_a_point_in_time_keeps_only_the_writes_before_it() {
    let bin = bin_dir();
    // Owned by the runtime account (postgres when we are root), as every directory below.
    let dir = owned_dir("fv-test-pitr-");
    let root = dir.path();
    let data = root.join("primary");
    let archive = root.join("archive");
    let base = root.join("base");
    owned_subdir(&archive);
    run(
        &bin,
        "initdb",
        &[
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ],
    );
    // Step 1 of the guide: archive every WAL segment.
    append(
        &data.join("postgresql.conf"),
        &format!(
            "\nwal_level = replica\narchive_mode = on\n\
             archive_command = 'test ! -f {0}/%f && cp %p {0}/%f'\nfsync = off\n",
            archive.display()
        ),
    );
    let mut primary = Server::start(&bin, data, root);
    primary.sql("CREATE TABLE ledger (id int PRIMARY KEY, note text NOT NULL)");
    primary.sql("INSERT INTO ledger VALUES (1, 'before the base backup')");

    // Step 2: a base backup.
    run(
        &bin,
        "pg_basebackup",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-D",
            base.to_str().unwrap(),
            "-X",
            "stream",
            "-c",
            "fast",
        ],
    );

    // Writes, the time noted, more writes (the "mistake"), and the WAL holding them archived.
    primary.sql("INSERT INTO ledger VALUES (2, 'after the base backup')");
    let target = primary.sql("SELECT clock_timestamp()::text");
    primary.sql("INSERT INTO ledger VALUES (3, 'the mistake')");
    primary.sql("DELETE FROM ledger WHERE id = 1");
    let segment = primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    wait_for("the last segment to be archived", &primary, || {
        archive.join(&segment).is_file()
    });
    primary.stop();

    // Step 3: restore the base backup to the noted time.
    append(
        &base.join("postgresql.conf"),
        &format!(
            "\narchive_mode = off\nrestore_command = 'cp {}/%f %p'\n\
             recovery_target_time = '{target}'\nrecovery_target_action = 'promote'\n",
            archive.display()
        ),
    );
    std::fs::write(base.join("recovery.signal"), "").expect("recovery.signal");
    let recovered = Server::start(&bin, base, root);
    wait_for("recovery to end with a promotion", &recovered, || {
        recovered.sql("SELECT pg_is_in_recovery()") == "f"
    });
    assert_eq!(
        recovered.sql("SELECT string_agg(id || ':' || note, ', ' ORDER BY id) FROM ledger"),
        "1:before the base backup, 2:after the base backup",
        "only the writes before {target}"
    );
    let log = recovered.log();
    assert!(log.contains("recovery stopping before commit"), "{log}");
    // The recovered server takes writes on its new timeline.
    recovered.sql("INSERT INTO ledger VALUES (4, 'after recovery')");
}
