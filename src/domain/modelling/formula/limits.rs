//! Size limits of a formula and its cost in evaluation.
//!
//! A formula is written once and evaluated for every period of every scenario on every read, so
//! its size is bounded when it is saved ([`FormulaLimits`], checked by
//! [`parse_with`](super::parse_with) while it parses) and its cost is known before any evaluation
//! starts ([`eval_weight`]), which lets a caller refuse work it cannot afford instead of stopping
//! it half-way.

use super::{Expr, FormulaError};

/// How large a formula may be. The defaults of the server come from its configuration
/// (`FV_MAX_FORMULA_LENGTH`, `FV_MAX_FORMULA_NODES`, `FV_MAX_FORMULA_ARGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormulaLimits {
    /// The most characters of source.
    pub max_length: usize,
    /// The most syntax-tree nodes (see [`node_count`]).
    pub max_nodes: usize,
    /// The most arguments of one function call (`min`, `max`).
    pub max_args: usize,
}

impl FormulaLimits {
    /// No limit beyond the depth limit of the grammar: for formulas already accepted when they
    /// were saved, which must keep parsing if the limits are lowered later.
    pub const UNLIMITED: Self = Self {
        max_length: usize::MAX,
        max_nodes: usize::MAX,
        max_args: usize::MAX,
    };

    /// Refuse a source longer than `max_length` characters. It runs before the lexer, so an
    /// oversized formula costs one pass over its bytes, never a token or a node.
    pub(crate) fn check_length(&self, src: &str) -> Result<(), FormulaError> {
        // Bytes bound characters from above: most formulas are decided without counting.
        if src.len() <= self.max_length {
            return Ok(());
        }
        let length = src.chars().count();
        if length <= self.max_length {
            return Ok(());
        }
        Err(FormulaError::new(
            self.max_length,
            format!(
                "the formula is too long: {length} characters, at most {} are allowed",
                self.max_length
            ),
        ))
    }

    /// The error for a formula that grows past `max_nodes` at `position`.
    pub(crate) fn too_many_nodes(&self, position: usize) -> FormulaError {
        FormulaError::new(
            position,
            format!(
                "the formula is too large at column {}: at most {} terms, operators and \
                 functions are allowed",
                position + 1,
                self.max_nodes
            ),
        )
    }

    /// The error for a call of `function` given more than `max_args` arguments.
    pub(crate) fn too_many_args(&self, function: &str, position: usize) -> FormulaError {
        FormulaError::new(
            position,
            format!(
                "too many arguments to `{function}` at column {}: at most {} are allowed",
                position + 1,
                self.max_args
            ),
        )
    }
}

/// The nodes of `expr`: every number, key, `sum`, operator, unary minus and function call is
/// one (an `if` is one, plus the nodes of its condition's sides and branches). Parentheses are
/// not nodes. [`parse_with`](super::parse_with) counts the same way as it parses.
pub fn node_count(expr: &Expr) -> usize {
    match expr {
        Expr::Number(_) | Expr::Ref { .. } | Expr::Sum { .. } => 1,
        Expr::Neg(inner) | Expr::Abs(inner) => 1 + node_count(inner),
        Expr::Binary { lhs, rhs, .. } => 1 + node_count(lhs) + node_count(rhs),
        Expr::Min(args) | Expr::Max(args) => 1 + args.iter().map(node_count).sum::<usize>(),
        Expr::If {
            cond,
            then,
            otherwise,
        } => {
            1 + node_count(&cond.lhs)
                + node_count(&cond.rhs)
                + node_count(then)
                + node_count(otherwise)
        }
    }
}

/// What evaluating `expr` for one period costs, in nodes: [`node_count`], except that a
/// `sum(x, n)` counts `n`, since it reads `n` periods. An upper bound: an `if` counts both
/// branches, though only one is evaluated.
pub fn eval_weight(expr: &Expr) -> u64 {
    match expr {
        Expr::Number(_) | Expr::Ref { .. } => 1,
        Expr::Sum { count, .. } => u64::from(*count).max(1),
        Expr::Neg(inner) | Expr::Abs(inner) => 1 + eval_weight(inner),
        Expr::Binary { lhs, rhs, .. } => 1 + eval_weight(lhs) + eval_weight(rhs),
        Expr::Min(args) | Expr::Max(args) => 1 + args.iter().map(eval_weight).sum::<u64>(),
        Expr::If {
            cond,
            then,
            otherwise,
        } => {
            1 + eval_weight(&cond.lhs)
                + eval_weight(&cond.rhs)
                + eval_weight(then)
                + eval_weight(otherwise)
        }
    }
}
