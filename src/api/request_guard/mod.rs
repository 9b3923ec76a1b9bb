//! The request guard: measures a parsed document before async-graphql validates it, and refuses
//! what would cost too much to validate or to answer.
//!
//! async-graphql's own limits run during validation, and validation itself expands fragment
//! spreads without memoising: a 1 KB chain of fragments that each spread the previous one twice
//! costs it minutes. Its introspection answers also grow with the product of the list sizes along
//! each path, which no depth limit bounds. This guard is a pure function of the document, linear
//! in its size, run before either.

mod expansion;
mod introspection;
#[cfg(test)]
mod tests;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
};

pub(crate) use introspection::SchemaBounds;

use expansion::{Expanded, ExpansionError, FragmentTable};
use introspection::CostWalk;

/// The code of every refusal: the same as async-graphql's own depth and complexity limits.
pub(crate) use crate::api::errors::codes::QUERY_TOO_COMPLEX;

/// The guard's limits (from `Config`).
#[derive(Debug, Clone)]
pub(crate) struct GuardLimits {
    /// Field selections in the operation once fragment spreads are expanded.
    pub(crate) max_selections: u64,
    /// Fragment definitions in the document.
    pub(crate) max_fragments: usize,
    /// Aliased fields in the operation once fragment spreads are expanded.
    pub(crate) max_aliases: u64,
    /// Depth of an introspection-only operation, and of every `__schema`/`__type` subtree.
    pub(crate) max_introspection_depth: u64,
    /// Estimated values in the introspection part of a response.
    pub(crate) max_introspection_cost: u64,
}

/// What the guard measured on the operation that will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentShape {
    /// The operation's type; `None` when the document names no single runnable operation
    /// (execution reports that).
    pub(crate) operation: Option<OperationType>,
    /// Whether the operation selects nothing but `__`-fields at its root (a query).
    pub(crate) introspection_only: bool,
    /// Field selections with spreads expanded.
    pub(crate) selections: u64,
    /// Aliased fields with spreads expanded.
    pub(crate) aliases: u64,
    /// Fragment definitions in the document.
    pub(crate) fragments: usize,
    /// Field nesting with spreads expanded.
    pub(crate) depth: u64,
    /// Estimated values in the introspection part of the response (0 without introspection).
    pub(crate) introspection_cost: u64,
    /// Selection nodes the guard itself visited: its own work, bounded by the document's size.
    pub(crate) steps: u64,
}

/// A refusal: which limit, the figure measured, and the message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuardError {
    /// The client-facing message, naming the limit.
    pub(crate) message: String,
    /// The limit's setting (`max_selections`, …).
    pub(crate) limit: &'static str,
    /// What was measured (saturated at `u64::MAX`; where the guard stopped early, the figure it
    /// had reached when it stopped, already past the limit).
    pub(crate) measured: u64,
    /// Selection nodes the guard visited before refusing.
    pub(crate) steps: u64,
}

impl GuardError {
    /// The error code (`QUERY_TOO_COMPLEX`).
    pub(crate) fn code(&self) -> &'static str {
        QUERY_TOO_COMPLEX
    }

    fn new(limit: &'static str, what: &str, measured: u64, max: u64, steps: u64) -> Self {
        let shown = if measured == u64::MAX {
            "too many".to_owned()
        } else {
            measured.to_string()
        };
        GuardError {
            message: format!("query too complex: {what} {shown}, at most {max} ({limit})"),
            limit,
            measured,
            steps,
        }
    }
}

/// The operation that will run: the named one, the only one, or `None` when execution will
/// refuse the document (no name among several, or an unknown name).
fn selected<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match &doc.operations {
        DocumentOperations::Single(op) => Some(&op.node),
        DocumentOperations::Multiple(ops) => match operation_name {
            Some(name) => ops.get(name).map(|op| &op.node),
            None if ops.len() == 1 => ops.values().next().map(|op| &op.node),
            None => None,
        },
    }
}

/// Measure `doc` and refuse it when a figure passes `limits`.
///
/// Only the operation that will run is measured. When none can be chosen (several and no or an
/// unknown name) every operation is measured and the largest figures count: execution will
/// refuse such a document, but async-graphql validates every operation first, so each must be
/// cheap to validate.
pub(crate) fn inspect(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    limits: &GuardLimits,
    bounds: &SchemaBounds,
) -> Result<DocumentShape, GuardError> {
    let fragments = doc.fragments.len();
    if fragments > limits.max_fragments {
        return Err(GuardError::new(
            "max_fragments",
            "fragments",
            fragments as u64,
            limits.max_fragments as u64,
            0,
        ));
    }
    // Every fragment is measured, used or not: validation visits them all.
    let mut table = match FragmentTable::build(doc, limits.max_selections) {
        Ok(table) => table,
        Err((ExpansionError::Cycle(name), steps)) => {
            return Err(GuardError {
                message: format!("query too complex: fragment `{name}` spreads itself"),
                limit: "fragment cycle",
                measured: u64::MAX,
                steps,
            });
        }
        Err((ExpansionError::TooLarge(_, measured), steps)) => {
            return Err(GuardError::new(
                "max_selections",
                "field selections after expanding fragments",
                measured,
                limits.max_selections,
                steps,
            ));
        }
    };
    let op = selected(doc, operation_name);
    let measured: Vec<&OperationDefinition> = match op {
        Some(op) => vec![op],
        None => doc.operations.iter().map(|(_, op)| &op.node).collect(),
    };
    let mut figures = Expanded::default();
    for op in &measured {
        let e = table.expand(&op.selection_set.node);
        figures.selections = figures.selections.max(e.selections);
        figures.aliases = figures.aliases.max(e.aliases);
        figures.depth = figures.depth.max(e.depth);
    }
    let steps = table.steps;
    if figures.selections > limits.max_selections {
        return Err(GuardError::new(
            "max_selections",
            "field selections after expanding fragments",
            figures.selections,
            limits.max_selections,
            steps,
        ));
    }
    if figures.aliases > limits.max_aliases {
        return Err(GuardError::new(
            "max_aliases",
            "aliased fields after expanding fragments",
            figures.aliases,
            limits.max_aliases,
            steps,
        ));
    }
    let introspection_only = op.is_some_and(|op| {
        op.ty == OperationType::Query
            && op.selection_set.node.items.iter().all(|item| {
                matches!(&item.node, Selection::Field(f) if f.node.name.node.starts_with("__"))
            })
    });
    if introspection_only && figures.depth > limits.max_introspection_depth {
        return Err(GuardError::new(
            "max_introspection_depth",
            "introspection depth",
            figures.depth,
            limits.max_introspection_depth,
            steps,
        ));
    }
    let mut walk = CostWalk {
        doc,
        bounds,
        cap: limits.max_introspection_cost,
        max_depth: limits.max_introspection_depth,
        steps: 0,
        max_steps: limits
            .max_selections
            .saturating_mul(4)
            .saturating_add(1_000),
    };
    let introspection_cost = measured
        .iter()
        .map(|op| walk.root(&op.selection_set.node))
        .max()
        .unwrap_or(0);
    let steps = steps.saturating_add(walk.steps);
    if introspection_cost > limits.max_introspection_cost {
        return Err(GuardError::new(
            "max_introspection_cost",
            "estimated introspection values",
            introspection_cost,
            limits.max_introspection_cost,
            steps,
        ));
    }
    Ok(DocumentShape {
        operation: op.map(|op| op.ty),
        introspection_only,
        selections: figures.selections,
        aliases: figures.aliases,
        fragments,
        depth: figures.depth,
        introspection_cost,
        steps,
    })
}
