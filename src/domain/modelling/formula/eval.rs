//! Evaluation of every metric of a model over its whole timeline.
//!
//! Metrics are computed component by component in the order [`schedule`] gives, each component
//! period by period (ascending, or descending for one that reads later periods of itself), and
//! within a period its metrics in the order of what they read in that period. So every value a
//! formula reads is already known when it is read, and each cell is computed exactly once. No
//! cell is ever computed by recursively demanding other cells, which keeps the cost linear and
//! the stack flat however long the timeline.

use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};

use super::{
    BinaryOp, CompareOp, Expr,
    analysis::metric_reads,
    cycles::{Cycle, Direction, ReadGraph, schedule},
};

/// A metric of the model as the evaluator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDef {
    /// The metric's key, unique in the model.
    pub key: String,
    /// The parsed formula of a DERIVED metric; `None` for an INPUT metric.
    pub formula: Option<Expr>,
}

/// Everything [`evaluate`] reads: one scenario of one model.
#[derive(Debug, Clone, Copy)]
pub struct ModelInput<'a> {
    /// The length of the model's timeline; periods are indexed `0..period_count`.
    pub period_count: usize,
    /// Every metric of the model, INPUT and DERIVED, in any order.
    pub metrics: &'a [MetricDef],
    /// The effective value of every parameter (the scenario's override, else its base chain's,
    /// else the default).
    pub parameters: &'a HashMap<String, Decimal>,
    /// Per metric key, the stored value of each period index, already resolved through the
    /// scenario chain. A vector shorter than the timeline (or a missing key) means no stored
    /// values for the periods it does not cover; extra entries are ignored.
    pub stored: &'a HashMap<String, Vec<Option<Decimal>>>,
}

/// A model that [`validate`](super::validate) and [`schedule`] should have rejected when its
/// formulas were saved. Data never causes an error: only the model's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Metrics depend on each other in a cycle that [`schedule`] refuses: within one period
    /// (`a → b → a`), or reading both earlier and later periods (`x → x[1] → x[-1]`).
    #[error("the formulas depend on each other in a cycle {0}")]
    Cycle(Cycle),
    /// A formula reads a key that is neither a metric nor a parameter with a value.
    #[error("the formula of `{metric}` reads `{key}`, which is neither a metric nor a parameter")]
    UnknownKey {
        /// The metric whose formula it is.
        metric: String,
        /// The key it reads.
        key: String,
    },
    /// Two metrics have the same key.
    #[error("two metrics have the key `{0}`")]
    DuplicateMetric(String),
}

/// Round a computed value for output: half-even ("banker's") to 6 decimal places, and written
/// with exactly 6 (`2` → `2.000000`) when the value is small enough to carry them. Zero is never
/// negative.
///
/// Evaluation keeps full precision; only output is rounded, so that rounding never compounds
/// through a chain of formulas.
pub fn round_output(d: Decimal) -> Decimal {
    let mut rounded = d.round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(6);
    // `-0.0000001` rounds to zero, and `-x` of a zero is a negative zero: neither should print
    // as `-0.000000`.
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}

/// A formula with its keys resolved to metric indices or parameter values, so that evaluating
/// a cell involves no lookup by name.
enum Compiled {
    Const(Decimal),
    /// `metrics[index]` read `offset` periods away; `count` periods back from there (1 for a
    /// plain reference, more for `sum`).
    Metric {
        index: usize,
        offset: i64,
        count: u32,
    },
    /// A parameter: one value for every period on the timeline.
    Parameter {
        value: Decimal,
        offset: i64,
        count: u32,
    },
    Neg(Box<Compiled>),
    Binary(BinaryOp, Box<Compiled>, Box<Compiled>),
    Min(Vec<Compiled>),
    Max(Vec<Compiled>),
    Abs(Box<Compiled>),
    If {
        op: CompareOp,
        lhs: Box<Compiled>,
        rhs: Box<Compiled>,
        then: Box<Compiled>,
        otherwise: Box<Compiled>,
    },
}

struct Compiler<'a> {
    /// The metric whose formula is compiled.
    own: usize,
    index: &'a HashMap<&'a str, usize>,
    parameters: &'a HashMap<String, Decimal>,
    metrics: &'a [MetricDef],
}

impl Compiler<'_> {
    fn key(&mut self, key: &str, offset: i32, count: u32) -> Result<Compiled, EvalError> {
        let offset = i64::from(offset);
        // Metrics win over parameters if a key is both (validation refuses that anyway). Whether
        // a metric may read itself or others at this offset is for `schedule`, over the model.
        if let Some(&index) = self.index.get(key) {
            return Ok(Compiled::Metric {
                index,
                offset,
                count,
            });
        }
        match self.parameters.get(key) {
            Some(&value) => Ok(Compiled::Parameter {
                value,
                offset,
                count,
            }),
            None => Err(EvalError::UnknownKey {
                metric: self.metrics[self.own].key.clone(),
                key: key.to_owned(),
            }),
        }
    }

    fn all(&mut self, exprs: &[Expr]) -> Result<Vec<Compiled>, EvalError> {
        exprs.iter().map(|e| self.compile(e)).collect()
    }

    fn boxed(&mut self, expr: &Expr) -> Result<Box<Compiled>, EvalError> {
        self.compile(expr).map(Box::new)
    }

    fn compile(&mut self, expr: &Expr) -> Result<Compiled, EvalError> {
        Ok(match expr {
            Expr::Number(n) => Compiled::Const(*n),
            Expr::Ref { key, offset, .. } => self.key(key, *offset, 1)?,
            Expr::Sum {
                key, offset, count, ..
            } => self.key(key, *offset, *count)?,
            Expr::Neg(inner) => Compiled::Neg(self.boxed(inner)?),
            Expr::Binary { op, lhs, rhs } => {
                Compiled::Binary(*op, self.boxed(lhs)?, self.boxed(rhs)?)
            }
            Expr::Min(args) => Compiled::Min(self.all(args)?),
            Expr::Max(args) => Compiled::Max(self.all(args)?),
            Expr::Abs(inner) => Compiled::Abs(self.boxed(inner)?),
            Expr::If {
                cond,
                then,
                otherwise,
            } => Compiled::If {
                op: cond.op,
                lhs: self.boxed(&cond.lhs)?,
                rhs: self.boxed(&cond.rhs)?,
                then: self.boxed(then)?,
                otherwise: self.boxed(otherwise)?,
            },
        })
    }
}

/// The values computed so far and the period being computed.
struct Cell<'a> {
    /// Every metric's series, `period_count` long; a cell not computed yet is `None`, and the
    /// order of [`evaluate`] never reads one.
    values: &'a [Vec<Option<Decimal>>],
    period: usize,
    period_count: usize,
}

impl Cell<'_> {
    /// The period `offset` away from the current one, if it is on the timeline.
    fn period(&self, offset: i64) -> Option<usize> {
        let period = i64::try_from(self.period).ok()?.checked_add(offset)?;
        usize::try_from(period)
            .ok()
            .filter(|p| *p < self.period_count)
    }

    /// Add up `count` periods ending `offset` away, with `read` giving each one's value.
    fn periods(
        &self,
        offset: i64,
        count: u32,
        read: impl Fn(usize) -> Option<Decimal>,
    ) -> Option<Decimal> {
        let mut total: Option<Decimal> = None;
        for back in 0..i64::from(count) {
            let value = read(self.period(offset.checked_sub(back)?)?)?;
            total = Some(match total {
                None => value,
                Some(t) => t.checked_add(value)?,
            });
        }
        total
    }

    fn eval(&self, expr: &Compiled) -> Option<Decimal> {
        match expr {
            Compiled::Const(n) => Some(*n),
            Compiled::Metric {
                index,
                offset,
                count,
            } => {
                let series = self.values.get(*index)?;
                self.periods(*offset, *count, |p| series.get(p).copied().flatten())
            }
            Compiled::Parameter {
                value,
                offset,
                count,
            } => self.periods(*offset, *count, |_| Some(*value)),
            Compiled::Neg(inner) => self.eval(inner).map(|v| -v),
            Compiled::Binary(op, lhs, rhs) => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                // Checked operations: overflow, like division by zero, is an empty cell.
                match op {
                    BinaryOp::Add => a.checked_add(b),
                    BinaryOp::Sub => a.checked_sub(b),
                    BinaryOp::Mul => a.checked_mul(b),
                    BinaryOp::Div => a.checked_div(b),
                }
            }
            Compiled::Min(args) => self.fold(args, Decimal::min),
            Compiled::Max(args) => self.fold(args, Decimal::max),
            Compiled::Abs(inner) => self.eval(inner).map(|v| v.abs()),
            Compiled::If {
                op,
                lhs,
                rhs,
                then,
                otherwise,
            } => {
                let holds = op.holds(self.eval(lhs)?, self.eval(rhs)?);
                // Only the selected branch is evaluated: `None` in the other one does not matter.
                self.eval(if holds { then } else { otherwise })
            }
        }
    }

    /// `min`/`max`: `None` if any argument is `None` (or there are none).
    fn fold(&self, args: &[Compiled], pick: fn(Decimal, Decimal) -> Decimal) -> Option<Decimal> {
        let mut result: Option<Decimal> = None;
        for arg in args {
            let value = self.eval(arg)?;
            result = Some(result.map_or(value, |r| pick(r, value)));
        }
        result
    }
}

/// Compute every metric of the model for every period of its timeline.
///
/// The value of metric `m` in period `t` is, in order:
/// 1. its stored value for `t`, if any — also for a DERIVED metric, where a stored value is an
///    actual or a seed that overrides the formula (which is how `revenue = revenue[-1] * (1 +
///    growth_rate)` starts, and how `value_to_go = free_cash_flow + value_to_go[1] * 0.97`
///    ends);
/// 2. else, for a DERIVED metric, its formula evaluated at `t`;
/// 3. else `None`.
///
/// In a formula, a period off the timeline (`t + offset < 0` or `>= period_count`) reads `None`;
/// `None` propagates through every operation, comparison and function; division by zero and
/// overflow give `None`; `if` evaluates only the branch its condition selects (a `None`
/// condition gives `None`). Arithmetic is exact [`Decimal`] (28 significant digits; a product
/// needing more is rounded by [`Decimal`] itself, which only happens far beyond cents). Nothing
/// is rounded here: apply [`round_output`] to what is shown or stored.
///
/// Recursion runs in the direction its formulas read (see [`schedule`]): a metric reading its
/// own earlier periods is computed from the first period on, one reading its later periods from
/// the last period back. Each cell is computed once, and the cost is linear in cells × formula
/// size.
///
/// The result has an entry for every metric, each with exactly `period_count` values.
///
/// Errors are only for models that validation should have refused: a cycle [`schedule`] refuses,
/// a key that is neither a metric nor a parameter in `input.parameters`, or two metrics with the
/// same key.
pub fn evaluate(input: &ModelInput) -> Result<HashMap<String, Vec<Option<Decimal>>>, EvalError> {
    let metrics = input.metrics;
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(metrics.len());
    for (i, metric) in metrics.iter().enumerate() {
        if index.insert(metric.key.as_str(), i).is_some() {
            return Err(EvalError::DuplicateMetric(metric.key.clone()));
        }
    }

    let mut compiled: Vec<Option<Compiled>> = Vec::with_capacity(metrics.len());
    let mut graph = ReadGraph::new();
    for (own, metric) in metrics.iter().enumerate() {
        let mut compiler = Compiler {
            own,
            index: &index,
            parameters: input.parameters,
            metrics,
        };
        // Every metric is a node, INPUT ones too, so that the plan computes (copies) them.
        let reads = metric
            .formula
            .as_ref()
            .map_or_else(Default::default, |expr| {
                metric_reads(expr, &metric.key, &index)
            });
        graph.insert(metric.key.clone(), reads);
        let formula = match &metric.formula {
            Some(expr) => Some(compiler.compile(expr)?),
            None => None,
        };
        compiled.push(formula);
    }
    let plan = schedule(&graph).map_err(EvalError::Cycle)?;

    let period_count = input.period_count;
    let stored: Vec<&[Option<Decimal>]> = metrics
        .iter()
        .map(|m| input.stored.get(&m.key).map_or(&[][..], Vec::as_slice))
        .collect();
    let mut values: Vec<Vec<Option<Decimal>>> = vec![vec![None; period_count]; metrics.len()];
    for component in &plan {
        // Every key of the plan is a metric: formulas only add metrics to the graph.
        let members: Vec<usize> = component
            .metrics
            .iter()
            .filter_map(|key| index.get(key.as_str()).copied())
            .collect();
        for step in 0..period_count {
            let period = match component.direction {
                Direction::Backward => period_count - 1 - step,
                Direction::Forward | Direction::Acyclic => step,
            };
            for &m in &members {
                let value = match (stored[m].get(period).copied().flatten(), &compiled[m]) {
                    (Some(v), _) => Some(v),
                    (None, Some(formula)) => Cell {
                        values: &values,
                        period,
                        period_count,
                    }
                    .eval(formula),
                    (None, None) => None,
                };
                values[m][period] = value;
            }
        }
    }

    Ok(metrics.iter().map(|m| m.key.clone()).zip(values).collect())
}
