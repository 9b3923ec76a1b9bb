//! The request guard at the transport: parse a request's document once, measure it, and turn a
//! refusal into a GraphQL error. `POST`/`GET /graphql` and the WebSocket handler all call
//! [`guard_request`], so every way in meets the same limits.

use async_graphql::{Request as GqlRequest, ServerError};

use crate::{
    api::request_guard::{DocumentShape, GuardLimits, QUERY_TOO_COMPLEX, inspect},
    app::App,
    config::Config,
};

/// Brackets (`{`, `[`, `(`) open at once in a query text. async-graphql's parser stops deep
/// input itself (selection sets at 64 levels; nested values fail to parse some 500–750 levels
/// down, measured on a 2 MiB stack), so this is an earlier, cheaper refusal with a clear message,
/// and a margin should a parser update move those limits: the count is linear and needs no
/// stack. Legitimate documents nest far less.
pub(crate) const MAX_NESTING: usize = 128;

impl GuardLimits {
    /// The limits a configuration sets.
    pub(crate) fn of(config: &Config) -> Self {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        GuardLimits {
            max_selections: wide(config.max_selections),
            max_fragments: config.max_fragments,
            max_aliases: wide(config.max_aliases),
            max_introspection_depth: wide(config.max_introspection_depth),
            max_introspection_cost: wide(config.max_introspection_cost),
        }
    }
}

/// The deepest bracket nesting of a query text, stopping as soon as it passes `limit`. Strings,
/// block strings and comments are skipped: brackets in them are text.
fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped delimiter inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// A refusal as a GraphQL error: `extensions.code = QUERY_TOO_COMPLEX`, the limit's setting,
/// the measured figure (absent when saturated) and the guard's own work (`steps`: selection nodes
/// visited), which shows a client, and the tests, that refusing cost little.
fn refusal(
    code: &str,
    message: String,
    limit: &str,
    measured: Option<u64>,
    steps: u64,
) -> ServerError {
    let mut error = ServerError::new(message, None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code);
    extensions.set("limit", limit);
    if let Some(measured) = measured.filter(|m| *m != u64::MAX) {
        extensions.set("measured", measured);
    }
    extensions.set("steps", steps);
    error
}

/// Measure a request's document before execution. `Ok(None)` when the document does not parse:
/// execution reports the syntax error itself (with its position). `Err` is the one error to
/// answer with, instead of executing.
pub(crate) fn guard_request(
    app: &App,
    request: &mut GqlRequest,
) -> Result<Option<DocumentShape>, ServerError> {
    if nesting_exceeds(&request.query, MAX_NESTING) {
        return Err(refusal(
            QUERY_TOO_COMPLEX,
            format!("query too complex: brackets nested deeper than {MAX_NESTING}"),
            "nesting",
            None,
            0,
        ));
    }
    // Parsed once: the request keeps the document, and async-graphql executes that one.
    let operation_name = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return Ok(None);
    };
    let limits = GuardLimits::of(app.config());
    match inspect(
        doc,
        operation_name.as_deref(),
        &limits,
        &app.inner.schema_bounds,
    ) {
        Ok(shape) => Ok(Some(shape)),
        Err(refused) => {
            tracing::info!(
                limit = refused.limit,
                measured = refused.measured,
                steps = refused.steps,
                "request refused by the guard"
            );
            Err(refusal(
                refused.code(),
                refused.message,
                refused.limit,
                Some(refused.measured),
                refused.steps,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nesting_exceeds;

    #[test]
    fn nesting_skips_strings_and_comments() {
        assert!(!nesting_exceeds(r#"{ a(x: "[[[[") }"#, 2));
        assert!(!nesting_exceeds("{ a(x: \"\"\"[[[\\\"\"\"[[\"\"\") }", 2));
        assert!(!nesting_exceeds("# {{{{{\n{ a }", 2));
        assert!(nesting_exceeds("{ a { b { c } } }", 2));
        assert!(nesting_exceeds(&"[".repeat(1 << 20), 128));
    }

    /// What the cap leaves through must parse on a small stack (tokio's workers have 2 MiB; the
    /// test thread gets less than a debug build would need for deeper input).
    #[test]
    fn the_parser_survives_input_at_the_cap() {
        let n = super::MAX_NESTING - 2;
        let list = format!("{{ a(x: {}1{}) }}", "[".repeat(n), "]".repeat(n));
        let object = format!("{{ a(x: {}1{}) }}", "{b: ".repeat(n), "}".repeat(n));
        let fields = format!("{}b{}", "{a".repeat(n), "}".repeat(n));
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for text in [list, object, fields] {
                    // A syntax or recursion-limit error is fine: the point is not overflowing.
                    let _ = async_graphql::parser::parse_query(&text);
                }
            })
            .expect("spawn");
        assert!(handle.join().is_ok());
    }
}
