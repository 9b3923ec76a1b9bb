//! The formula language of DERIVED metrics: parsing, static analysis and evaluation.
//!
//! This module is pure: no database, no async. The caller loads a model (its metrics, the
//! effective parameter values of a scenario, the stored values resolved through the scenario
//! chain), and this module computes every metric for every period of the model's timeline.
//!
//! # Grammar
//!
//! ```text
//! formula    := additive EOF
//! additive   := term (("+" | "-") term)*            left associative
//! term       := unary (("*" | "/") unary)*          left associative
//! unary      := "-" unary | primary                 binds tighter than * and /
//! primary    := number
//!             | key offset?
//!             | "(" additive ")"
//!             | "min" "(" additive ("," additive)* ")"
//!             | "max" "(" additive ("," additive)* ")"
//!             | "abs" "(" additive ")"
//!             | "sum" "(" key offset? "," integer ")"
//!             | "if" "(" additive compare additive "," additive "," additive ")"
//! offset     := "[" ("-" | "+")? integer "]"
//! compare    := ">" | "<" | ">=" | "<=" | "==" | "!="
//! key        := [a-z_][a-z0-9_]*                    a metric key or a parameter key
//! number     := [0-9]+ ("." [0-9]+)? | "." [0-9]+   e.g. `12`, `0.5`, `.5`
//! integer    := [0-9]+
//! ```
//!
//! Decisions worth knowing:
//! - `.5` is accepted (spreadsheets accept it); `5.` is not (more often a typo than a number).
//!   There is no exponent notation and no unary `+` (except in an offset: `x[+1]`). A number may
//!   have at most 28 significant digits (the precision of [`Decimal`]); a longer one is rejected
//!   rather than silently rounded.
//! - `-x * y` is `(-x) * y` and `-x[-1]` is `-(x[-1])`: the offset belongs to the key.
//! - `x[0]` is the same as `x`. An offset and the count of `sum` must be whole numbers written
//!   as literals (`x[n]` or `sum(x, n)` with a key `n` is an error); at most
//!   [`MAX_OFFSET`] periods either way and a `sum` of at most [`MAX_SUM_PERIODS`] periods.
//! - `sum(x[-1], 3)` is `x[-1] + x[-2] + x[-3]`: the periods ending at the offset one, so
//!   `sum(x, 3)` reads `x` at offsets `0`, `-1` and `-2`.
//! - A metric may depend on itself, directly or through other metrics, only across periods in
//!   one direction of time (`revenue = revenue[-1] * (1 + growth_rate)` forward,
//!   `value_to_go = free_cash_flow + value_to_go[1] * 0.97` backward). [`schedule`] applies the
//!   rule to the whole model and names a refused [`Cycle`] (`x → x[1] → x[-1]`); both are
//!   described in `cycles.rs`.
//! - Comparisons exist only as the condition of `if`; there are no booleans otherwise.
//! - `min`, `max`, `abs`, `sum` and `if` are reserved: no metric or parameter may use one of
//!   them as its key, since `min` alone would be ambiguous with the function.
//! - Keys are lowercase; `Revenue` is an error that says so.
//! - Whitespace (any Unicode whitespace) may appear between any two tokens.
//! - A formula may have at most [`MAX_DEPTH`] levels of operators and functions (parentheses
//!   do not count), so that no formula can exhaust the stack of the parser or of the evaluator.
//!
//! - Saved formulas are bounded by [`FormulaLimits`] (characters, nodes, arguments of a call),
//!   checked by [`parse_with`] before lexing and while parsing; [`eval_weight`] is what one
//!   period of a formula costs to evaluate, known before evaluation starts.
//!
//! Errors carry the 0-based character offset of the offending token ([`FormulaError::position`])
//! and a message for analysts that already names the 1-based column.
//!
//! # Evaluation
//!
//! See [`evaluate`]: every cell computed once, in the order [`schedule`] gives, with spreadsheet
//! semantics, where an error cell (missing input, division by zero, a period off the timeline,
//! overflow) is `None` and propagates, except through the branch of an `if` that is not taken.

mod analysis;
mod cycles;
mod eval;
mod lexer;
mod limits;
mod parser;

#[cfg(test)]
mod tests;

use std::fmt;

use rust_decimal::Decimal;

pub use analysis::{
    KeySet, Reads, Reference, metric_dependencies, metric_reads, references, topological_order,
    validate,
};
pub use cycles::{Component, Cycle, CycleKind, Direction, ReadGraph, schedule};
pub use eval::{EvalError, MetricDef, ModelInput, evaluate, round_output};
pub use limits::{FormulaLimits, eval_weight, node_count};
pub use parser::{parse, parse_with};

/// The most levels a formula's expression may have: each operator, unary minus and function
/// call is a level over its operands (a chain `a + b + c` is two levels); parentheses are not
/// levels. Far beyond any real formula; it only protects the stack of the evaluator. (The parser
/// also refuses more than `2 × MAX_DEPTH + 2` nested parentheses, for its own stack.)
pub const MAX_DEPTH: usize = 100;

/// The largest offset, in periods, a formula may use either way (`x[-10000]`).
pub const MAX_OFFSET: i32 = 10_000;

/// The largest count of periods a `sum(x, n)` may add up.
pub const MAX_SUM_PERIODS: u32 = 10_000;

/// The names of the functions; no metric or parameter may use one as its key.
pub const RESERVED_WORDS: [&str; 5] = ["min", "max", "abs", "sum", "if"];

/// A syntax or validation error in a formula.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FormulaError {
    /// The 0-based offset, in characters (not bytes), of the token the error is about. It may be
    /// equal to the formula's length when the formula ended too early.
    pub position: usize,
    /// A message for the analyst who wrote the formula; it already mentions the column.
    pub message: String,
}

impl FormulaError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }

    /// The 1-based column of the error, as an editor shows it.
    pub fn column(&self) -> usize {
        self.position + 1
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (division by zero gives `None`)
    Div,
}

impl BinaryOp {
    /// The operator as written in a formula.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
}

/// A comparison operator, only found in the condition of an `if`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CompareOp {
    /// The operator as written in a formula.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Gt => ">",
            CompareOp::Lt => "<",
            CompareOp::Ge => ">=",
            CompareOp::Le => "<=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        }
    }

    /// Apply the comparison (exact: decimals compare by value, `1.0 == 1`).
    pub fn holds(self, lhs: Decimal, rhs: Decimal) -> bool {
        match self {
            CompareOp::Gt => lhs > rhs,
            CompareOp::Lt => lhs < rhs,
            CompareOp::Ge => lhs >= rhs,
            CompareOp::Le => lhs <= rhs,
            CompareOp::Eq => lhs == rhs,
            CompareOp::Ne => lhs != rhs,
        }
    }
}

/// The condition of an `if`: `lhs op rhs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The comparison.
    pub op: CompareOp,
    /// The left side.
    pub lhs: Expr,
    /// The right side.
    pub rhs: Expr,
}

/// A parsed formula.
///
/// Equality is structural and ignores `position` fields: `parse("a+b") == parse("(a + b)")`.
/// Positions say where a node was written, not what it means. Numbers compare by value
/// (`0.50 == 0.5`).
///
/// [`Display`](fmt::Display) prints fully parenthesised source that parses back to an equal
/// `Expr`.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A number literal. Never negative when produced by [`parse`] (`-3` is `Neg(Number(3))`).
    Number(Decimal),
    /// A metric or parameter key, read `offset` periods away from the current one (`0` for the
    /// current period, `-1` for the previous one).
    Ref {
        /// The metric or parameter key.
        key: String,
        /// The period offset.
        offset: i32,
        /// Where the key starts in the source (0-based characters).
        position: usize,
    },
    /// Unary minus.
    Neg(Box<Expr>),
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `min(a, b, …)`: at least one argument.
    Min(Vec<Expr>),
    /// `max(a, b, …)`: at least one argument.
    Max(Vec<Expr>),
    /// `abs(a)`.
    Abs(Box<Expr>),
    /// `sum(key[offset], count)` = `key[offset] + key[offset-1] + … + key[offset-(count-1)]`.
    Sum {
        /// The metric key summed over periods.
        key: String,
        /// The offset of the latest period of the sum (usually `0`).
        offset: i32,
        /// How many periods, at least 1.
        count: u32,
        /// Where the key starts in the source (0-based characters).
        position: usize,
    },
    /// `if(cond, then, otherwise)`: only the branch selected by `cond` is evaluated.
    If {
        /// The comparison deciding the branch.
        cond: Box<Condition>,
        /// The value when the condition holds.
        then: Box<Expr>,
        /// The value when it does not.
        otherwise: Box<Expr>,
    },
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Expr::Number(a), Expr::Number(b)) => a == b,
            (
                Expr::Ref {
                    key: k1,
                    offset: o1,
                    ..
                },
                Expr::Ref {
                    key: k2,
                    offset: o2,
                    ..
                },
            ) => k1 == k2 && o1 == o2,
            (Expr::Neg(a), Expr::Neg(b)) | (Expr::Abs(a), Expr::Abs(b)) => a == b,
            (
                Expr::Binary {
                    op: o1,
                    lhs: l1,
                    rhs: r1,
                },
                Expr::Binary {
                    op: o2,
                    lhs: l2,
                    rhs: r2,
                },
            ) => o1 == o2 && l1 == l2 && r1 == r2,
            (Expr::Min(a), Expr::Min(b)) | (Expr::Max(a), Expr::Max(b)) => a == b,
            (
                Expr::Sum {
                    key: k1,
                    offset: o1,
                    count: c1,
                    ..
                },
                Expr::Sum {
                    key: k2,
                    offset: o2,
                    count: c2,
                    ..
                },
            ) => k1 == k2 && o1 == o2 && c1 == c2,
            (
                Expr::If {
                    cond: c1,
                    then: t1,
                    otherwise: e1,
                },
                Expr::If {
                    cond: c2,
                    then: t2,
                    otherwise: e2,
                },
            ) => c1 == c2 && t1 == t2 && e1 == e2,
            _ => false,
        }
    }
}

impl Eq for Expr {}

/// Writes `key` or `key[offset]`.
fn write_key(f: &mut fmt::Formatter<'_>, key: &str, offset: i32) -> fmt::Result {
    if offset == 0 {
        write!(f, "{key}")
    } else {
        write!(f, "{key}[{offset}]")
    }
}

fn write_args(f: &mut fmt::Formatter<'_>, name: &str, args: &[Expr]) -> fmt::Result {
    write!(f, "{name}(")?;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{arg}")?;
    }
    write!(f, ")")
}

impl fmt::Display for Expr {
    /// Fully parenthesised source: every operator application is wrapped in parentheses, so the
    /// output never depends on precedence and parses back to an equal `Expr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A negative literal (never produced by the parser) prints as a negation, which
            // evaluates to the same value.
            Expr::Number(n) if n.is_sign_negative() && !n.is_zero() => write!(f, "(-{})", -*n),
            Expr::Number(n) => write!(f, "{}", n.abs()),
            Expr::Ref { key, offset, .. } => write_key(f, key, *offset),
            Expr::Neg(inner) => write!(f, "(-{inner})"),
            Expr::Binary { op, lhs, rhs } => write!(f, "({lhs} {} {rhs})", op.symbol()),
            Expr::Min(args) => write_args(f, "min", args),
            Expr::Max(args) => write_args(f, "max", args),
            Expr::Abs(inner) => write!(f, "abs({inner})"),
            Expr::Sum {
                key, offset, count, ..
            } => {
                write!(f, "sum(")?;
                write_key(f, key, *offset)?;
                write!(f, ", {count})")
            }
            Expr::If {
                cond,
                then,
                otherwise,
            } => write!(
                f,
                "if({} {} {}, {then}, {otherwise})",
                cond.lhs,
                cond.op.symbol(),
                cond.rhs
            ),
        }
    }
}
