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
/// over every period, whatever the selection (`FV_EVAL_BUDGET` bounds the cells at run time).
/// Sized so that a hundred `series { points { value } }` (53 each with their scenario) are
/// refused, and a page of 100 models each with a page of 100 scenarios' series is not.
pub(crate) const EVALUATION: usize = 50;
/// Recomputing an organization's whole audit hash chain (`verifyAuditChain`).
pub(crate) const VERIFY_AUDIT_CHAIN: usize = 500;
/// Reading audit history: up to two statements over the largest table (the page, and its count
/// or cursor checks when selected), before paging.
pub(crate) const AUDIT_HISTORY: usize = 50;

/// A search (`search`): one statement over four tables' trigram indexes, ranked, before its
/// hits: weighed like reading audit history, so that a request cannot alias a hundred of them.
pub(crate) const SEARCH: usize = 50;

/// Items a page will hold: `first`, else `last`, else the default page, clamped to the largest
/// page accepted (an out-of-range size is refused by the resolver, not here).
fn page_size(first: Option<i32>, last: Option<i32>) -> usize {
    first.or(last).map_or(DEFAULT_PAGE, |n| {
        usize::try_from(n.clamp(0, MAX_PAGE)).unwrap_or(0)
    })
}

/// Items of a page counted in full; past them a page weighs one more item per doubling.
const FULL_ITEMS: usize = 4;

/// What a page's items weigh: the first [`FULL_ITEMS`] in full, then one per doubling (20 items
/// weigh 6, 100 weigh 8). A page is one statement whatever its size and its items resolve in
/// batches, so its cost grows far slower than its size; weighing items in full would refuse the
/// plain `models(first: 100) { nodes { scenarios(first: 100) { nodes { series … } } } }` that
/// dashboards ask for, while three pages of 100 nested with a full selection still weigh
/// 8³ × the selection and are refused.
fn page_weight(size: usize) -> usize {
    if size <= FULL_ITEMS {
        size
    } else {
        let doublings = (size / FULL_ITEMS).ilog2();
        FULL_ITEMS + usize::try_from(doublings).unwrap_or(usize::MAX)
    }
}

/// A connection: its items' cost times the page's weight (at least one item: `first: 0` still
/// resolves `pageInfo` and `totalCount`), + 1.
pub(crate) fn page(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    page_weight(page_size(first, last))
        .max(1)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// A page of audit history: [`AUDIT_HISTORY`] plus the page.
pub(crate) fn audit_page(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    page(first, last, child_complexity).saturating_add(AUDIT_HISTORY)
}

/// `search`: [`SEARCH`] plus its hits weighed as a page of `first`.
pub(crate) fn search(first: Option<i32>, child_complexity: usize) -> usize {
    page(first, None, child_complexity).saturating_add(SEARCH)
}

/// `series`: one evaluation, then one series per metric key asked for. Without keys every
/// metric is returned, but the evaluation computed them all anyway: counted once.
pub(crate) fn series(metric_keys: &Option<Vec<String>>, child_complexity: usize) -> usize {
    let metrics = metric_keys.as_ref().map_or(1, Vec::len).max(1);
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
        let weights: Vec<usize> = [0, 1, 4, 5, 8, 16, 20, 64, 100].map(page_weight).into();
        assert_eq!(weights, [0, 1, 4, 4, 5, 6, 6, 8, 8]);
        assert_eq!(page(None, None, 3), 19);
        assert_eq!(page(Some(100), None, 3), 25);
        assert_eq!(page(None, Some(2), 3), 7);
        assert_eq!(page(Some(-7), None, 3), 4);
        assert_eq!(page(Some(i32::MAX), None, usize::MAX), usize::MAX);
        assert_eq!(series(&None, 2), 52);
        assert_eq!(series(&Some(vec!["a".into(), "b".into()]), 5), 60);
        assert_eq!(compare(&None, 5), 105);
        assert_eq!(nodes(&[ID::from("a"), ID::from("b")], 4), 9);
        assert_eq!(search(Some(20), 5), 81);
        assert_eq!(search(Some(100), 5), 91);
    }
}
