//! pg_auto_failover, the reference deployment's failover engine, for real: a monitor and two
//! Postgres nodes on loopback (`pg_autoctl create monitor`, `pg_autoctl create postgres`, each
//! then supervised by its own `pg_autoctl run`), in a temporary directory owned by the account
//! PostgreSQL runs as (as root: `postgres`; pg_autoctl and PostgreSQL refuse root), with HOME
//! and the XDG directories inside it. A planned failover (`pg_autoctl perform failover`) runs
//! under a write load from two server instances whose DATABASE_URL names both nodes with
//! `target_session_attrs=read-write`.
//!
//! Needs `pg_autoctl` and the `pgautofailover` extension of the machine's PostgreSQL (Debian:
//! `postgresql-15-auto-failover`, which `.ci/run` installs).

use std::{
    fs::{self, File},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use diesel::QueryableByName;
use finvision::{config::Config, db::migrate};
use nix::{
    sys::signal::{self, Signal},
    unistd::Pid,
};
use serde_json::Value;

use super::{
    Attempt, CREATE_MODEL, Node, both_write,
    cluster::{bin_dir, free_port, owned_dir, runtime_user},
    connect, model_input, names, percentile,
};

/// How a node stands in the monitor's eyes (`pg_autoctl show state --json`).
#[derive(Debug, Clone)]
struct NodeState {
    port: u16,
    /// The state the node reported.
    current: String,
    /// The state the monitor assigned to it.
    assigned: String,
}

impl NodeState {
    fn is(&self, state: &str) -> bool {
        self.current == state && self.assigned == state
    }
}

/// The port of the node that has reached `state` (current and assigned), if exactly one has.
fn port_in(states: &[NodeState], state: &str) -> Option<u16> {
    let mut matching = states.iter().filter(|s| s.is(state));
    match (matching.next(), matching.next()) {
        (Some(node), None) => Some(node.port),
        _ => None,
    }
}

/// Two nodes: one primary, one secondary, both settled.
fn primary_and_secondary(states: &[NodeState]) -> bool {
    states.len() == 2
        && port_in(states, "primary").is_some()
        && port_in(states, "secondary").is_some()
}

/// One `pg_autoctl run`: the child process (and, in its process group, the PostgreSQL it
/// supervises).
struct Service {
    pgdata: PathBuf,
    port: u16,
    child: Child,
    log: PathBuf,
}

/// A monitor and its nodes, stopped and removed when dropped.
pub(super) struct Formation {
    bin: PathBuf,
    root: PathBuf,
    monitor: Option<Service>,
    nodes: Vec<Service>,
    /// Declared last, so removed after the services stopped.
    _dir: tempfile::TempDir,
}

impl Formation {
    /// A monitor, then a first node (primary) and a second one (its secondary, by
    /// `pg_basebackup` from it), running; returns once the monitor reports one `primary` and one
    /// `secondary`.
    pub(super) fn start() -> Self {
        let found = Command::new("pg_autoctl").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "the pg_auto_failover test needs pg_autoctl (Debian: postgresql-15-auto-failover)"
        );
        let dir = owned_dir("fv-test-autofailover-");
        let mut formation = Self {
            bin: bin_dir(),
            root: dir.path().to_owned(),
            monitor: None,
            nodes: Vec::new(),
            _dir: dir,
        };
        for sub in ["home", "config", "data", "run", "sock"] {
            let path = formation.root.join(sub);
            fs::create_dir(&path).expect("a directory for pg_autoctl");
            if let Some(user) = runtime_user() {
                nix::unistd::chown(&path, Some(user.uid), Some(user.gid)).expect("chown");
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).expect("chmod");
        }

        let monitor = formation.root.join("monitor");
        let port = free_port();
        formation.initdb(&monitor);
        formation.autoctl(&[
            "create",
            "monitor",
            "--pgdata",
            path(&monitor),
            "--pgport",
            &port.to_string(),
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            "--pgctl",
            path(&formation.bin.join("pg_ctl")),
        ]);
        // The monitor listens on every address unless told otherwise.
        formation.autoctl(&[
            "config",
            "set",
            "--pgdata",
            path(&monitor),
            "postgresql.listen_addresses",
            "127.0.0.1",
        ]);
        formation.monitor = Some(formation.spawn_run("monitor", monitor.clone(), port));
        formation.wait_until("the monitor accepts connections", || {
            formation
                .command(&formation.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|status| status.success())
        });
        let monitor_uri = formation.autoctl(&[
            "show",
            "uri",
            "--pgdata",
            path(&monitor),
            "--formation",
            "monitor",
        ]);
        let monitor_uri = monitor_uri.trim().to_owned();

        for index in 0..2 {
            let name = format!("node{index}");
            let pgdata = formation.root.join(&name);
            let port = free_port();
            if index == 0 {
                // The second node is a base backup of the first, settings and all.
                formation.initdb(&pgdata);
            }
            formation.autoctl(&[
                "create",
                "postgres",
                "--pgdata",
                path(&pgdata),
                "--pgport",
                &port.to_string(),
                "--hostname",
                "127.0.0.1",
                "--listen",
                "127.0.0.1",
                "--name",
                &name,
                "--monitor",
                &monitor_uri,
                "--auth",
                "trust",
                "--no-ssl",
                "--dbname",
                "finvision",
                "--pgctl",
                path(&formation.bin.join("pg_ctl")),
            ]);
            let service = formation.spawn_run(&name, pgdata, port);
            formation.nodes.push(service);
            if index == 0 {
                formation.wait_states("the first node runs as `single`", |states| {
                    states.len() == 1 && states[0].is("single")
                });
            }
        }
        formation.wait_states("one primary and one secondary", primary_and_secondary);
        formation
    }

    /// A cluster of our own at `pgdata` (instead of pg_autoctl's `initdb`), so that its socket
    /// lives in the temporary directory: pg_autoctl starts PostgreSQL without `-k`, and the
    /// default socket directory may be missing or shared.
    fn initdb(&self, pgdata: &Path) {
        self.run(
            &self.bin.join("initdb"),
            &[
                "-D",
                path(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        // After pg_autoctl's include (it puts it at the top), so these win. `fsync = off`: the
        // test stops servers, it does not crash machines; pg_rewind needs `full_page_writes`,
        // left on.
        let conf = pgdata.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&format!(
            "\nunix_socket_directories = '{}'\nfsync = off\n",
            self.socket_dir().display()
        ));
        fs::write(&conf, text).expect("postgresql.conf");
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// A command as the runtime user, in the formation's environment only.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("HOME", self.root.join("home"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("PGHOST", self.socket_dir())
            .env("PG_CONFIG", self.bin.join("pg_config"))
            .env("LANG", "C")
            .stdin(Stdio::null());
        if let Some(user) = runtime_user() {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        command
    }

    fn autoctl_command(&self, args: &[&str]) -> Command {
        let mut command = self.command(Path::new("pg_autoctl"));
        command.args(args);
        command
    }

    /// Run `program` to completion; its standard output, or a panic with everything it said.
    fn run(&self, program: &Path, args: &[&str]) -> String {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}\n{}\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn autoctl(&self, args: &[&str]) -> String {
        self.run(Path::new("pg_autoctl"), args)
    }

    /// `pg_autoctl run` for the node or monitor at `pgdata`, in a process group of its own, its
    /// output in `<name>.log`.
    fn spawn_run(&self, name: &str, pgdata: PathBuf, port: u16) -> Service {
        let log = self.root.join(format!("{name}.log"));
        let file = File::create(&log).expect("a log file");
        let child = self
            .autoctl_command(&["run", "--pgdata", path(&pgdata)])
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("pg_autoctl run");
        Service {
            pgdata,
            port,
            child,
            log,
        }
    }

    /// The end of every service's log, for a failure's message.
    fn logs(&self) -> String {
        let mut text = String::new();
        for service in self.monitor.iter().chain(&self.nodes) {
            let log = fs::read_to_string(&service.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text.push_str(&format!("--- {}\n", service.log.display()));
            for line in &lines[lines.len().saturating_sub(30)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    fn monitor_pgdata(&self) -> &str {
        path(&self.monitor.as_ref().expect("a monitor").pgdata)
    }

    /// What the monitor says of each node (nothing while it does not answer).
    fn states(&self) -> Vec<NodeState> {
        let Ok(output) = self
            .autoctl_command(&["show", "state", "--pgdata", self.monitor_pgdata(), "--json"])
            .output()
        else {
            return Vec::new();
        };
        let Ok(Value::Array(nodes)) = serde_json::from_slice::<Value>(&output.stdout) else {
            return Vec::new();
        };
        nodes
            .iter()
            .filter_map(|node| {
                Some(NodeState {
                    port: u16::try_from(node["nodeport"].as_u64()?).ok()?,
                    current: node["current_group_state"].as_str()?.to_owned(),
                    assigned: node["assigned_group_state"].as_str()?.to_owned(),
                })
            })
            .collect()
    }

    /// Poll `done` for up to a minute (generous: the machine may be busy building).
    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waited 60 s for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait until the monitor's states satisfy `done`, and return them.
    fn wait_states(&self, what: &str, done: impl Fn(&[NodeState]) -> bool) -> Vec<NodeState> {
        let mut last = Vec::new();
        self.wait_until(what, || {
            last = self.states();
            done(&last)
        });
        last
    }

    /// The node ports, in the order the nodes were created.
    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    fn url(port: u16, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{database}")
    }

    /// `pg_autoctl perform failover` for the formation (it returns once the failover is over,
    /// the old primary included), to run off the async runtime.
    fn failover_command(&self) -> Command {
        self.autoctl_command(&[
            "perform",
            "failover",
            "--pgdata",
            self.monitor_pgdata(),
            "--formation",
            "default",
            "--group",
            "0",
            "--wait",
            "60",
        ])
    }

    /// The lines of the log of the node on `port` that mention `needle`.
    fn log_lines(&self, port: u16, needle: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|node| node.port == port)
            .flat_map(|node| {
                fs::read_to_string(&node.log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|line| line.contains(needle) && !line.trim_end().ends_with(':'))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The monitor's recent events.
    fn events(&self) -> String {
        self.autoctl(&[
            "show",
            "events",
            "--pgdata",
            self.monitor_pgdata(),
            "--count",
            "20",
        ])
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

impl Service {
    /// Ask `pg_autoctl run` to stop: on SIGQUIT it stops its PostgreSQL, then exits.
    fn quit(&self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGQUIT);
        }
    }

    /// Wait for the service to end; past a deadline, kill its process group. Then make sure its
    /// PostgreSQL is down (`pg_ctl stop -m immediate`).
    fn finish(&mut self, formation: &Formation) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    if let Ok(pid) = i32::try_from(self.child.id()) {
                        let _ = signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if self.pgdata.join("postmaster.pid").exists() {
            let _ = formation
                .command(&formation.bin.join("pg_ctl"))
                .args([
                    "-D",
                    path(&self.pgdata),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "10",
                    "stop",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        let mut services: Vec<Service> = self.nodes.drain(..).collect();
        services.extend(self.monitor.take());
        // All at once: each stop takes a moment.
        for service in &services {
            service.quit();
        }
        for service in &mut services {
            service.finish(self);
        }
    }
}

/// Whether the server at `url` is a standby.
async fn in_recovery(url: &str) -> bool {
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Recovery {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        recovery: bool,
    }
    let mut conn = connect(url).await;
    diesel::sql_query("SELECT pg_is_in_recovery() AS recovery")
        .get_result::<Recovery>(&mut conn)
        .await
        .expect("pg_is_in_recovery()")
        .recovery
}

/// Until `/readyz` shows every replica serving.
async fn wait_replicas_up(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = node.readyz().await;
        let replicas = body["replicas"].as_array().cloned().unwrap_or_default();
        if !replicas.is_empty() && replicas.iter().all(|r| r["state"] == "up") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas never all served: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A planned failover by pg_auto_failover (`pg_autoctl perform failover`: the monitor drains and
/// stops the primary, promotes the secondary, and the old primary rejoins as its secondary by
/// pg_rewind) under a write load from two instances whose URL names both nodes: writes fail only
/// during the switch, and then only with a retryable `UNAVAILABLE`; both instances write again
/// without a restart; every acknowledged write is on the new primary (the formation's
/// synchronous replication); the old primary is now a standby and the other node the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pg_auto_failover_switchover_under_write_load_loses_nothing_acknowledged() {
    let test_started = Instant::now();
    let formation = tokio::task::block_in_place(Formation::start);
    let formation_ready = test_started.elapsed();
    let ports = formation.ports();
    let old_primary = port_in(&formation.states(), "primary").expect("a primary");
    let new_primary = *ports
        .iter()
        .find(|&&port| port != old_primary)
        .expect("a second node");
    migrate::run(
        &Formation::url(old_primary, "finvision"),
        migrate::Direction::Up,
    )
    .await
    .expect("migrate");

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/finvision?target_session_attrs=read-write",
        ports[0], ports[1]
    );
    // The primary in the list too: a server not in recovery counts as caught up.
    let replicas: Vec<String> = ports
        .iter()
        .map(|&port| Formation::url(port, "finvision"))
        .collect();
    let configure = |config: &mut Config| {
        config.listen_database_url = Some(url.clone());
        config.db_pool_timeout_secs = 2;
    };
    let a = Arc::new(Node::start(&url, &replicas, configure).await);
    let b = Arc::new(Node::start(&url, &replicas, configure).await);
    wait_replicas_up(&a).await;
    wait_replicas_up(&b).await;
    let token = a.register("owner").await;
    let org = a.organization(&token, "acme").await;
    let mut acknowledged_names = Vec::new();
    for (i, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        let name = format!("Before {i}");
        node.gql(Some(&token), None, CREATE_MODEL, model_input(&org, &name))
            .await
            .data();
        acknowledged_names.push(name);
    }

    let stop = Arc::new(AtomicBool::new(false));
    // One writer per instance, each one mutation at a time.
    let writers: Vec<_> = [(a.clone(), "A"), (b.clone(), "B")]
        .into_iter()
        .map(|(node, label)| {
            let (token, org, stop) = (token.clone(), org.clone(), stop.clone());
            tokio::spawn(async move {
                let mut attempts = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("Load {label}{i}");
                    let started = Instant::now();
                    let reply = node
                        .gql(Some(&token), None, CREATE_MODEL, model_input(&org, &name))
                        .await;
                    let outcome = match reply.body["data"]["createModel"]["id"].as_str() {
                        Some(id) => Ok((id.to_owned(), name)),
                        None => Err((
                            reply.code().unwrap_or("none").to_owned(),
                            reply.body["errors"][0]["extensions"]["retryAfter"].as_i64(),
                        )),
                    };
                    let failed = outcome.is_err();
                    attempts.push(Attempt {
                        at: started,
                        took: started.elapsed(),
                        outcome,
                    });
                    i += 1;
                    if failed {
                        // A client honouring `retryAfter` would wait longer; the test probes.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                attempts
            })
        })
        .collect();

    // Some load before the switch (its length is no condition of the test).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let failover_at = Instant::now();
    let mut command = formation.failover_command();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("pg_autoctl perform failover");
    let performed_at = Instant::now();
    assert!(
        output.status.success(),
        "pg_autoctl perform failover failed: {}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        formation.logs()
    );
    // The monitor's view: the other node is the primary, the old primary its secondary.
    let states = tokio::task::block_in_place(|| {
        formation.wait_states("the old primary rejoins as secondary", |states| {
            primary_and_secondary(states) && port_in(states, "primary") == Some(new_primary)
        })
    });
    let settled_at = Instant::now();
    assert_eq!(port_in(&states, "secondary"), Some(old_primary));
    // Both instances write again, without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !both_write(&a, &b, &token, &org).await {
        assert!(
            Instant::now() < deadline,
            "the instances did not write again after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut attempts = Vec::new();
    for writer in writers {
        attempts.extend(writer.await.expect("writer"));
    }
    attempts.sort_by_key(|attempt| attempt.at);

    // And the servers' own.
    assert!(
        !in_recovery(&Formation::url(new_primary, "finvision")).await,
        "the new primary is in recovery"
    );
    assert!(
        in_recovery(&Formation::url(old_primary, "finvision")).await,
        "the old primary is not a standby"
    );

    let failures: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome.is_err()).collect();
    acknowledged_names.extend(
        attempts
            .iter()
            .filter_map(|a| a.outcome.as_ref().ok().map(|(_, name)| name.clone())),
    );
    let acknowledged_after = attempts
        .iter()
        .filter(|a| a.outcome.is_ok() && a.at > failover_at)
        .count();
    assert!(
        acknowledged_names.len() > 20,
        "only {} writes acknowledged",
        acknowledged_names.len()
    );
    for failure in &failures {
        let (code, retry_after) = failure.outcome.as_ref().expect_err("a failure");
        assert_eq!(code, "UNAVAILABLE", "a write failed otherwise");
        assert!(retry_after.is_some(), "UNAVAILABLE without retryAfter");
        assert!(
            failure.at >= failover_at && failure.at <= performed_at,
            "a write failed outside the switch ({:?} after it began)",
            failure.at.saturating_duration_since(failover_at)
        );
    }
    // Every acknowledged write is on the new primary.
    let stored = names(&Formation::url(new_primary, "finvision")).await;
    for name in &acknowledged_names {
        assert!(
            stored.iter().any(|s| s == name),
            "acknowledged model {name} is gone"
        );
    }

    let window = match (failures.first(), failures.last()) {
        (Some(first), Some(last)) => {
            format!(
                "{:?} (first refusal {:?} after `perform failover` began)",
                (last.at + last.took).saturating_duration_since(first.at),
                first.at.saturating_duration_since(failover_at)
            )
        }
        _ => "none".to_owned(),
    };
    // When the writers got through again: the first acknowledgement after the last refusal.
    let resumed = failures
        .last()
        .and_then(|last| {
            attempts
                .iter()
                .find(|a| a.outcome.is_ok() && a.at > last.at)
        })
        .map_or("-".to_owned(), |a| {
            format!(
                "{:?}",
                (a.at + a.took).saturating_duration_since(failover_at)
            )
        });
    // The slowest acknowledged write once the switch began (one that waited through it).
    let slowest = attempts
        .iter()
        .filter(|a| a.outcome.is_ok() && a.at >= failover_at)
        .map(|a| a.took)
        .max()
        .unwrap_or_default();
    let mut took: Vec<Duration> = failures.iter().map(|f| f.took).collect();
    took.sort();
    let refusals_took = if took.is_empty() {
        "-".to_owned()
    } else {
        format!(
            "p50 {:?} max {:?}",
            percentile(&took, 0.5),
            took.last().expect("a refusal")
        )
    };
    eprintln!("{}", formation.events());
    // How the old primary rejoined: pg_rewind, or a new base backup when that fails.
    for line in formation.log_lines(old_primary, "rewind") {
        eprintln!("old primary: {line}");
    }
    eprintln!(
        "pg_auto_failover: formation ready in {formation_ready:?}; {} writes acknowledged ({acknowledged_after} after the failover began), \
         {} refused; error window {window}; refusals took {refusals_took}; slowest acknowledged write {slowest:?}; writes resumed {resumed} after `perform failover` began, \
         which returned after {:?} (the old primary rejoined as secondary); settled by {:?}; test time {:?}",
        acknowledged_names.len(),
        failures.len(),
        performed_at.saturating_duration_since(failover_at),
        settled_at.saturating_duration_since(failover_at),
        test_started.elapsed(),
    );
}
