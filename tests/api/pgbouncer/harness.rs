//! A PgBouncer (the machine's `pgbouncer`, Debian's package) in front of the test server, in
//! transaction pooling mode, on a free loopback port, with a generated configuration in a
//! temporary directory; stopped (and the directory removed) when the value is dropped.
//!
//! It needs the binary: `.ci/run` installs it, and these tests only build with the `engines`
//! feature. A missing binary fails the test, saying so; nothing is skipped.

use std::{
    io::Write,
    net::{TcpListener, TcpStream},
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::helpers::with_database;

/// A running PgBouncer.
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// The binary: `FV_TEST_PGBOUNCER`, else `pgbouncer` on the PATH or in `/usr/sbin`.
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("FV_TEST_PGBOUNCER")
        && !path.is_empty()
    {
        return path.into();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the `engines` tests need PgBouncer: `apt-get install pgbouncer` (or set FV_TEST_PGBOUNCER)"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl PgBouncer {
    /// Start one in front of the server of `server_url` (any database: clients name theirs),
    /// with at most `pool_size` server connections per database and user.
    pub fn start(server_url: &str, pool_size: u32) -> Self {
        let url = url::Url::parse(server_url).expect("the test server's URL");
        let host = url.host_str().expect("a TCP test server");
        let port = url.port().unwrap_or(5432);
        let user = url.username();
        let password = url.password().unwrap_or("");
        let dir = tempfile::Builder::new()
            .prefix("fv-test-pgbouncer-")
            .tempdir()
            .expect("a directory for PgBouncer");
        let listen_port = free_port();
        // `server_round_robin = 0` is the default (a released server connection is the next one
        // lent), said out loud: with it, a lone client outside a transaction may keep getting
        // the same server connection and hide a statement that would break under load, which is
        // why the tests' concurrent parts are what proves anything.
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen_port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth}\n\
             pool_mode = transaction\n\
             default_pool_size = {pool_size}\n\
             min_pool_size = 0\n\
             reserve_pool_size = 0\n\
             max_client_conn = 500\n\
             server_reset_query =\n\
             server_round_robin = 0\n\
             ignore_startup_parameters = extra_float_digits\n\
             log_connections = 0\n\
             log_disconnections = 0\n",
            auth = dir.path().join("userlist.txt").display(),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
        let mut userlist =
            std::fs::File::create(dir.path().join("userlist.txt")).expect("write userlist.txt");
        writeln!(userlist, "\"{user}\" \"{password}\"").expect("write userlist.txt");
        drop(userlist);
        let mut command = Command::new(binary());
        // PgBouncer refuses to run as root: as root, it drops to the `postgres` account, which
        // must read the configuration.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            for name in ["", "pgbouncer.ini", "userlist.txt"] {
                let path = dir.path().join(name);
                let mode = if name.is_empty() { 0o755 } else { 0o644 };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(dir.path().join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pgbouncer");
        let mut bouncer = Self {
            child,
            port: listen_port,
            dir,
        };
        bouncer.wait_until_listening();
        bouncer
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "pgbouncer exited at start-up ({status}); configuration in {}",
                    self.dir.path().display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `server_url` with its host and port replaced by this PgBouncer's, for `database`.
    pub fn url_for(&self, server_url: &str, database: &str) -> String {
        let mut url = url::Url::parse(&with_database(server_url, database)).expect("URL");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(self.port)).expect("port");
        url.into()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
