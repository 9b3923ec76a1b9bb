//! Complexity weights: what a field costs in async-graphql's complexity count (capped by
//! `FV_MAX_COMPLEXITY`), for the fields whose cost is not one per value. Each field without a
//! weight costs 1 plus its children.
//!
//! async-graphql calls these from `#[graphql(complexity = "…")]` with the field's arguments (by
//! their Rust names, variables resolved) and `child_complexity`, the cost of one item's
//! selection. A page multiplies its items' cost by its size; a model evaluation costs what it
//! computes, estimated without evaluating.

use async_graphql::ID;

use super::relay::{DEFAULT_PAGE, MAX_PAGE};

/// One evaluation of a scenario's model (`series`, and each side of `compare`): every metric
/// over every period, whatever the selection. Sized so that about thirty `series` fit in one
/// request and a hundred do not.
pub(crate) const EVALUATION: usize = 50;
/// Metrics assumed when `metricKeys` is null (every metric of the model).
pub(crate) const DEFAULT_METRICS: usize = 20;
/// Recomputing an organization's whole audit hash chain (`verifyAuditChain`).
pub(crate) const VERIFY_AUDIT_CHAIN: usize = 500;
/// Reading audit history: two statements over the largest table, before paging.
pub(crate) const AUDIT_HISTORY: usize = 50;

/// Items a page will hold: `first`, else `last`, else the default page, clamped to the largest
/// page accepted (an out-of-range size is refused by the resolver, not here).
fn page_size(first: Option<i32>, last: Option<i32>) -> usize {
    first.or(last).map_or(DEFAULT_PAGE, |n| {
        usize::try_from(n.clamp(0, MAX_PAGE)).unwrap_or(0)
    })
}

/// A connection: its items' cost times its page size (at least one item: `first: 0` still
/// resolves `pageInfo` and `totalCount`).
pub(crate) fn page(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    page_size(first, last)
        .max(1)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// A page of audit history: [`AUDIT_HISTORY`] plus the page.
pub(crate) fn audit_page(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    page(first, last, child_complexity).saturating_add(AUDIT_HISTORY)
}

/// `series`: one evaluation, then one series per metric selected.
pub(crate) fn series(metric_keys: &Option<Vec<String>>, child_complexity: usize) -> usize {
    let metrics = metric_keys
        .as_ref()
        .map_or(DEFAULT_METRICS, Vec::len)
        .max(1);
    metrics
        .saturating_mul(child_complexity)
        .saturating_add(EVALUATION)
}

/// `compare`: two evaluations, then one comparison per metric selected.
pub(crate) fn compare(metric_keys: &Option<Vec<String>>, child_complexity: usize) -> usize {
    series(metric_keys, child_complexity).saturating_add(EVALUATION)
}

/// `nodes`: each id resolved on its own.
pub(crate) fn nodes(ids: &[ID], child_complexity: usize) -> usize {
    ids.len()
        .max(1)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(page(None, None, 3), 61);
        assert_eq!(page(Some(100), None, 3), 301);
        assert_eq!(page(None, Some(5), 3), 16);
        assert_eq!(page(Some(-7), None, 3), 4);
        assert_eq!(page(Some(i32::MAX), None, usize::MAX), usize::MAX);
        assert_eq!(series(&None, 5), 150);
        assert_eq!(series(&Some(vec!["revenue".into()]), 5), 55);
        assert_eq!(compare(&None, 5), 200);
        assert_eq!(nodes(&[ID::from("a"), ID::from("b")], 4), 9);
    }
}
