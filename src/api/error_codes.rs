//! Gives every error an `extensions.code`, including the ones async-graphql itself raises
//! (syntax, validation, limits), for HTTP and WebSocket alike.

use async_graphql::ServerError;

use super::errors::codes;

/// Messages async-graphql uses for its query limits (`validation/mod.rs`).
const LIMIT_MESSAGES: &[&str] = &[
    "Query is too complex.",
    "Query is nested too deep.",
    "The number of directives",
];

/// Code an error that has none: a limit is `QUERY_TOO_COMPLEX`; anything else async-graphql
/// rejects before our resolvers run (syntax, unknown fields, bad variables) is the client's input.
pub fn ensure_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if has_code {
        return;
    }
    let code = if LIMIT_MESSAGES.iter().any(|m| error.message.starts_with(m)) {
        codes::QUERY_TOO_COMPLEX
    } else {
        codes::BAD_USER_INPUT
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}
