//! Field errors as the GraphQL spec handles them ("Handling Field Errors"), which async-graphql 7
//! does not: it drops a failed field's key from `data` (`resolver_utils/container.rs`), so a
//! refused nullable field, such as another member's `email`, is *missing* rather than `null`,
//! and Apollo Client's cache reports "Missing field".
//!
//! This extension restores the spec's rules:
//! - a nullable field that fails resolves to `null`, its error kept at its path;
//! - a non-null field that fails makes its nearest nullable ancestor field `null` (and `data`
//!   itself when there is none), the error staying at the failed field's path.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::{
    Response, ServerError, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, NextSubscribe,
        ResolveInfo,
    },
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;

/// The extension factory: one state per request (or per subscription).
pub struct FieldErrors;

impl ExtensionFactory for FieldErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldErrorsExtension::default())
    }
}

/// What failed so far in the current response.
#[derive(Default)]
struct Failures {
    /// Errors of nullable fields turned into `null`; async-graphql never saw them.
    errors: Vec<ServerError>,
    /// Paths of failed non-null fields whose nullable ancestor has not been nulled yet.
    non_null: Vec<Vec<String>>,
}

#[derive(Default)]
struct FieldErrorsExtension {
    failures: Arc<Mutex<Failures>>,
}

impl FieldErrorsExtension {
    fn with<T>(&self, f: impl FnOnce(&mut Failures) -> T) -> T {
        f(&mut self.failures.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Complete a response: add the errors of nulled fields, and null `data` when a non-null field
/// failed with no nullable field above it.
fn complete(failures: &Mutex<Failures>, mut response: Response) -> Response {
    let mut failures = failures.lock().unwrap_or_else(PoisonError::into_inner);
    let Failures { errors, non_null } = std::mem::take(&mut *failures);
    if !non_null.is_empty() {
        response.data = Value::Null;
    }
    response.errors.extend(errors);
    response
}

#[async_trait::async_trait]
impl Extension for FieldErrorsExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        complete(&self.failures, response)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Events are resolved one after another: each takes the failures of its own resolution.
        let failures = self.failures.clone();
        next.run(ctx, stream)
            .map(move |response| complete(&failures, response))
            .boxed()
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.is_for_introspection {
            return next.run(ctx, info).await;
        }
        let nullable = !info.return_type.ends_with('!');
        let path = (*info.path_node).to_string_vec();
        let result = next.run(ctx, info).await;
        match result {
            Err(error) if nullable => Ok(self.with(|f| {
                f.non_null.retain(|failed| !failed.starts_with(&path));
                f.errors.push(error);
                Some(Value::Null)
            })),
            Err(error) => {
                // async-graphql records the error itself and drops the field: its parent must go.
                self.with(|f| f.non_null.push(path));
                Err(error)
            }
            Ok(value) if nullable => Ok(self.with(|f| {
                let before = f.non_null.len();
                f.non_null.retain(|failed| !failed.starts_with(&path));
                if f.non_null.len() < before {
                    Some(Value::Null)
                } else {
                    value
                }
            })),
            Ok(value) => Ok(value),
        }
    }
}
