//! Evaluation of every metric of a model over its whole timeline.
//!
//! Metrics are computed one after the other in dependency order, and each one period after the
//! other in ascending order, so that every value a formula reads is already known: another
//! metric is complete before any metric that reads it starts, and a metric's own earlier periods
//! are done before a later one. No cell is ever computed by recursively demanding other cells,
//! which keeps the cost linear and the stack flat.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::{Decimal, RoundingStrategy};

use super::{BinaryOp, CompareOp, Expr, analysis::topological_order};

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

/// A model that [`validate`](super::validate) and [`find_cycle`](super::find_cycle) should have
/// rejected when its formulas were saved. Data never causes an error: only the model's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Metrics depend on each other in a circle (`["a", "b", "a"]`), or a metric reads itself in
    /// the same or a later period (`["a", "a"]`).
    #[error("the formulas depend on each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
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
    /// The other metrics this formula reads: the edges of the dependency graph.
    dependencies: BTreeSet<String>,
}

impl Compiler<'_> {
    fn key(&mut self, key: &str, offset: i32, count: u32) -> Result<Compiled, EvalError> {
        let offset = i64::from(offset);
        // Metrics win over parameters if a key is both (validation refuses that anyway).
        if let Some(&index) = self.index.get(key) {
            if index == self.own {
                // The latest period read must be an earlier one, or the cell reads itself.
                if offset >= 0 {
                    return Err(EvalError::Cycle(vec![key.to_owned(), key.to_owned()]));
                }
            } else {
                self.dependencies.insert(key.to_owned());
            }
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
///    growth_rate)` starts);
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
/// The result has an entry for every metric, each with exactly `period_count` values.
///
/// Errors are only for models that validation should have refused: a dependency cycle (also a
/// metric reading its own current or later period), a key that is neither a metric nor a
/// parameter in `input.parameters`, or two metrics with the same key.
pub fn evaluate(input: &ModelInput) -> Result<HashMap<String, Vec<Option<Decimal>>>, EvalError> {
    let metrics = input.metrics;
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(metrics.len());
    for (i, metric) in metrics.iter().enumerate() {
        if index.insert(metric.key.as_str(), i).is_some() {
            return Err(EvalError::DuplicateMetric(metric.key.clone()));
        }
    }

    let mut compiled: Vec<Option<Compiled>> = Vec::with_capacity(metrics.len());
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (own, metric) in metrics.iter().enumerate() {
        let mut compiler = Compiler {
            own,
            index: &index,
            parameters: input.parameters,
            metrics,
            dependencies: BTreeSet::new(),
        };
        let formula = match &metric.formula {
            Some(expr) => Some(compiler.compile(expr)?),
            None => None,
        };
        compiled.push(formula);
        graph.insert(metric.key.clone(), compiler.dependencies);
    }
    let order = topological_order(&graph).map_err(EvalError::Cycle)?;

    let period_count = input.period_count;
    let mut values: Vec<Vec<Option<Decimal>>> = vec![Vec::new(); metrics.len()];
    for key in &order {
        // The order holds only metric keys: dependencies were only recorded for metrics.
        let Some(&m) = index.get(key.as_str()) else {
            continue;
        };
        let stored = input.stored.get(key);
        let mut series = Vec::with_capacity(period_count);
        for period in 0..period_count {
            let stored_value = stored.and_then(|s| s.get(period).copied().flatten());
            let value = match (stored_value, &compiled[m]) {
                (Some(v), _) => Some(v),
                (None, Some(formula)) => {
                    // The metric's own series is not in `values` yet: it is lent in for the
                    // duration of the cell, holding exactly the periods before `period`.
                    values[m] = series;
                    let cell = Cell {
                        values: &values,
                        period,
                        period_count,
                    };
                    let value = cell.eval(formula);
                    series = std::mem::take(&mut values[m]);
                    value
                }
                (None, None) => None,
            };
            series.push(value);
        }
        values[m] = series;
    }

    Ok(metrics.iter().map(|m| m.key.clone()).zip(values).collect())
}
