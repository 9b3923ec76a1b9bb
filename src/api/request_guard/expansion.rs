//! What a selection set costs once every fragment spread is expanded, computed without expanding
//! anything: each fragment's figures are computed once, in dependency order, and a spread adds its
//! fragment's figures. async-graphql expands spreads without memoising before it validates, so a
//! chain of fragments that each spread the previous one twice doubles its work per level; this
//! walk stays linear in the size of the document whatever the chain.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};

/// A selection set's figures after expanding spreads. Saturating: a figure that passes `u64::MAX`
/// stays there, which is above every cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Expanded {
    /// Field selections (a field inside a fragment counts once per spread that reaches it).
    pub(crate) selections: u64,
    /// Aliased fields, counted the same way.
    pub(crate) aliases: u64,
    /// Nesting of fields: `{ a { b } }` is 2. Spreads and inline fragments add no level.
    pub(crate) depth: u64,
}

impl Expanded {
    fn add(self, other: Expanded) -> Expanded {
        Expanded {
            selections: self.selections.saturating_add(other.selections),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
        }
    }
}

/// Why a document cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpansionError {
    /// A fragment reaches itself through spreads (named: one fragment on the cycle).
    Cycle(String),
    /// A fragment's expansion passed the selection cap (its name and the figure reached).
    TooLarge(String, u64),
}

/// The fragments of a document with their expanded figures, and the work it took.
pub(crate) struct FragmentTable<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    figures: HashMap<&'a str, Expanded>,
    /// Selection nodes visited so far (fields, spreads, inline fragments): the guard's own work.
    pub(crate) steps: u64,
}

impl<'a> FragmentTable<'a> {
    /// Compute every fragment's figures once, in dependency order; refuse cycles and stop at the
    /// first fragment whose expansion passes `cap` selections. Spreads of unknown fragments count
    /// nothing: validation reports them.
    /// On failure, also the steps taken.
    pub(crate) fn build(
        doc: &'a ExecutableDocument,
        cap: u64,
    ) -> Result<Self, (ExpansionError, u64)> {
        let mut table = FragmentTable {
            fragments: &doc.fragments,
            figures: HashMap::with_capacity(doc.fragments.len()),
            steps: 0,
        };
        let fragments = table.fragments;
        let order = match table.dependency_order() {
            Ok(order) => order,
            Err(err) => return Err((err, table.steps)),
        };
        for order in order {
            let Some(definition) = fragments.get(order) else {
                continue;
            };
            let figures = table.expand(&definition.node.selection_set.node);
            if figures.selections > cap {
                return Err((
                    ExpansionError::TooLarge(order.to_string(), figures.selections),
                    table.steps,
                ));
            }
            table.figures.insert(order, figures);
        }
        Ok(table)
    }

    /// The figures of a selection set whose spreads' fragments are all computed already.
    pub(crate) fn expand(&mut self, set: &SelectionSet) -> Expanded {
        let mut total = Expanded::default();
        for item in &set.items {
            self.steps = self.steps.saturating_add(1);
            let figures = match &item.node {
                Selection::Field(field) => {
                    let children = self.expand(&field.node.selection_set.node);
                    Expanded {
                        selections: children.selections.saturating_add(1),
                        aliases: children
                            .aliases
                            .saturating_add(u64::from(field.node.alias.is_some())),
                        depth: children.depth.saturating_add(1),
                    }
                }
                Selection::InlineFragment(inline) => self.expand(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => self
                    .figures
                    .get(spread.node.fragment_name.node.as_str())
                    .copied()
                    .unwrap_or_default(),
            };
            total = total.add(figures);
        }
        total
    }

    /// The fragments in an order where each comes after every fragment it spreads: an iterative
    /// depth-first walk (a recursive one would follow a long chain down the stack).
    fn dependency_order(&mut self) -> Result<Vec<&'a str>, ExpansionError> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Mark {
            Visiting,
            Done,
        }
        let fragments = self.fragments;
        let mut marks: HashMap<&'a str, Mark> = HashMap::with_capacity(fragments.len());
        let mut order = Vec::with_capacity(fragments.len());
        let mut names: Vec<&'a str> = fragments.keys().map(|n| n.as_str()).collect();
        // A fixed order keeps the reported cycle (and the work) the same from run to run.
        names.sort_unstable();
        for root in names {
            if marks.contains_key(root) {
                continue;
            }
            // Each frame: a fragment and the spreads it still has to visit.
            let mut stack: Vec<(&'a str, Vec<&'a str>)> = vec![(root, self.spreads_of(root))];
            marks.insert(root, Mark::Visiting);
            while let Some((name, pending)) = stack.last_mut() {
                match pending.pop() {
                    Some(next) => match marks.get(next) {
                        Some(Mark::Visiting) => return Err(ExpansionError::Cycle(next.to_owned())),
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(next, Mark::Visiting);
                            let spreads = self.spreads_of(next);
                            stack.push((next, spreads));
                        }
                    },
                    None => {
                        let name = *name;
                        marks.insert(name, Mark::Done);
                        order.push(name);
                        stack.pop();
                    }
                }
            }
        }
        Ok(order)
    }

    /// The known fragments a fragment spreads directly (unknown names are left to validation).
    fn spreads_of(&mut self, name: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        let fragments = self.fragments;
        if let Some(definition) = fragments.get(name) {
            self.collect_spreads(&definition.node.selection_set.node, &mut out);
        }
        out
    }

    fn collect_spreads(&mut self, set: &'a SelectionSet, out: &mut Vec<&'a str>) {
        for item in &set.items {
            self.steps = self.steps.saturating_add(1);
            match &item.node {
                Selection::Field(field) => {
                    self.collect_spreads(&field.node.selection_set.node, out)
                }
                Selection::InlineFragment(inline) => {
                    self.collect_spreads(&inline.node.selection_set.node, out)
                }
                Selection::FragmentSpread(spread) => {
                    if let Some((known, _)) = self
                        .fragments
                        .get_key_value(spread.node.fragment_name.node.as_str())
                    {
                        out.push(known.as_str());
                    }
                }
            }
        }
    }
}
