//! Gives every error an `extensions.code`, including the ones async-graphql itself raises
//! (syntax, validation, limits), for HTTP and WebSocket alike.

use std::sync::Arc;

use async_graphql::{
    Response, ServerError,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest},
};

/// Messages async-graphql uses for its query limits (`validation/mod.rs`).
const LIMIT_MESSAGES: &[&str] = &[
    "Query is too complex.",
    "Query is nested too deep.",
    "The number of directives",
];

/// The extension factory.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

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
        "QUERY_TOO_COMPLEX"
    } else {
        "BAD_USER_INPUT"
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors.iter_mut().for_each(ensure_code);
        response
    }
}
