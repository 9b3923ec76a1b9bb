//! Logging: `tracing` with an `EnvFilter` (`FV_LOG`) and a text or JSON format (`FV_LOG_FORMAT`).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Install the global subscriber once; later calls (tests) are ignored.
pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if format.eq_ignore_ascii_case("json") {
        registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt::layer().with_target(false)).try_init()
    };
}
