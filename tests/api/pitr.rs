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

use crate::replicas::cluster::{bin_dir, free_port, owned_dir, run};

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
            if nix::unistd::geteuid().is_root()
                && let Ok(Some(user)) = nix::unistd::User::from_name("postgres")
            {
                use std::os::unix::process::CommandExt;
                command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            }
            let _ = command.status();
        }
    }
}

/// A directory the runtime account owns (the archive: `archive_command` writes there).
fn owned_subdir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir(path).expect("create the directory");
    if nix::unistd::geteuid().is_root()
        && let Ok(Some(user)) = nix::unistd::User::from_name("postgres")
    {
        nix::unistd::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
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
