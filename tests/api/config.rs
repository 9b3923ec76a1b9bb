//! The configuration tests build on ignores the environment: a developer's `FV_*` variables must
//! not change what the tests check.

use finvision::config::Config;

/// `Config::for_database` gives the documented defaults whatever the environment says (run in a
/// child process by the test below, with `FV_*` set).
#[test]
fn for_database_has_the_defaults() {
    let config = Config::for_database("postgres://localhost/x");
    assert_eq!(
        config.database_url.as_deref(),
        Some("postgres://localhost/x")
    );
    assert_eq!(config.max_depth, 12);
    assert_eq!(config.caller_cache_ttl_secs, 60);
    assert_eq!(config.db_pool_size, 16);
    assert!(config.registration);
    assert_eq!(config.object_store_url, None);
    assert_eq!(config.login_failures_per_account, 10);
    assert_eq!(config.login_failures_per_address, 100);
}

#[test]
fn for_database_ignores_the_environment() {
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "config::for_database_has_the_defaults"])
        .env("FV_MAX_DEPTH", "2")
        .env("FV_CALLER_CACHE_TTL_SECS", "1")
        .env("FV_DB_POOL_SIZE", "3")
        .env("FV_REGISTRATION", "false")
        .env("FV_OBJECT_STORE_URL", "memory://")
        .env("FV_LOGIN_FAILURES_PER_ADDRESS", "5")
        .env("DATABASE_URL", "postgres://elsewhere/y")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
