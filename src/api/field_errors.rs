//! Field errors as the GraphQL spec handles them ("Handling Field Errors"), which async-graphql 7
//! does not: it drops a failed field's key from `data` (`resolver_utils/container.rs`), so a
//! refused nullable field, such as another member's `email`, is *missing* rather than `null`,
//! and Apollo Client's cache reports "Missing field".
//!
//! [`FieldErrors`] restores the spec's rules (the API's one extension, `api/extension.rs`,
//! applies it to every field):
//! - a nullable field that fails resolves to `null`, its error kept at its path;
//! - a non-null field that fails makes its nearest nullable ancestor field `null` (and `data`
//!   itself when there is none), the error staying at the failed field's path.

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{QueryPathNode, Response, ServerError, ServerResult, Value};

/// What failed so far in the current response.
#[derive(Default)]
struct Failures {
    /// Errors of nullable fields turned into `null`; async-graphql never saw them.
    errors: Vec<ServerError>,
    /// Paths of failed non-null fields whose nullable ancestor has not been nulled yet.
    non_null: Vec<Vec<String>>,
}

/// The field-error state of one request (or subscription): cheap on the common path, where a
/// field resolves without error and nothing below it failed (one atomic load, no path built).
#[derive(Default)]
pub struct FieldErrors {
    failures: Mutex<Failures>,
    /// `failures.non_null.len()`, readable without the lock.
    pending: AtomicUsize,
}

impl FieldErrors {
    fn with<T>(&self, f: impl FnOnce(&mut Failures) -> T) -> T {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let out = f(&mut failures);
        self.pending
            .store(failures.non_null.len(), Ordering::Release);
        out
    }

    /// Apply the spec's rules to the result of the field at `path` (`nullable`: its type has no
    /// `!`).
    pub fn on_result(
        &self,
        path: &QueryPathNode<'_>,
        nullable: bool,
        result: ServerResult<Option<Value>>,
    ) -> ServerResult<Option<Value>> {
        match result {
            Err(error) if nullable => {
                let path = path.to_string_vec();
                Ok(self.with(|f| {
                    f.non_null.retain(|failed| !failed.starts_with(&path));
                    f.errors.push(error);
                    Some(Value::Null)
                }))
            }
            Err(error) => {
                // async-graphql records the error itself and drops the field: its parent must go.
                let path = path.to_string_vec();
                self.with(|f| f.non_null.push(path));
                Err(error)
            }
            Ok(value) if nullable && self.pending.load(Ordering::Acquire) > 0 => {
                let path = path.to_string_vec();
                Ok(self.with(|f| {
                    let before = f.non_null.len();
                    f.non_null.retain(|failed| !failed.starts_with(&path));
                    if f.non_null.len() < before {
                        Some(Value::Null)
                    } else {
                        value
                    }
                }))
            }
            Ok(value) => Ok(value),
        }
    }

    /// Complete a response: add the errors of nulled fields, and null `data` when a non-null
    /// field failed with no nullable field above it.
    pub fn complete(&self, mut response: Response) -> Response {
        let Failures { errors, non_null } = self.with(std::mem::take);
        if !non_null.is_empty() {
            response.data = Value::Null;
        }
        response.errors.extend(errors);
        response
    }
}
