//! Evaluation as a bounded resource. A scenario's grid (every metric, every period) costs CPU in
//! proportion to its cells times the size of their formulas, and any member can write the
//! formulas. So each evaluation is priced before it starts and charged to the request's
//! [`EvalBudget`]; it runs on a blocking thread, at most `max_concurrent_evaluations` at a time,
//! never on an async worker; and an [`EvalSession`] evaluates each scenario at most once however
//! many fields of the request ask for it.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use super::series::{ModelData, ScenarioGrid, evaluate_scenario};
use crate::{
    domain::Core,
    error::{AppError, AppResult},
};

/// What one request may spend on evaluation: cells × formula nodes (see
/// [`formula::eval_weight`](super::formula::eval_weight)), shared by every evaluation it runs.
#[derive(Debug)]
pub struct EvalBudget {
    limit: u64,
    spent: AtomicU64,
}

impl EvalBudget {
    /// A budget of `limit`, nothing spent.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            spent: AtomicU64::new(0),
        }
    }

    /// Reserve `cost`, or refuse with `TooComplex` and spend nothing when it does not fit in
    /// what is left.
    pub fn charge(&self, cost: u64) -> AppResult<()> {
        let mut spent = self.spent.load(Ordering::Relaxed);
        loop {
            let total = spent.saturating_add(cost);
            if total > self.limit {
                return Err(AppError::TooComplex(format!(
                    "evaluating this scenario costs {cost} (cells × formula nodes), more than is \
                     left of the evaluation budget of {} per request ({spent} already spent); \
                     ask for fewer scenarios or simplify the model's formulas",
                    self.limit
                )));
            }
            match self.spent.compare_exchange_weak(
                spent,
                total,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => spent = current,
            }
        }
    }

    /// What was charged so far.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }

    /// Start over (each event of a subscription is a new unit of work).
    fn reset(&self) {
        self.spent.store(0, Ordering::Relaxed);
    }
}

/// A scenario's grid, or why the budget refused it: a refusal is remembered too, so that a
/// hundred fields asking for a refused scenario do not load and price it a hundred times.
type Outcome = Result<Arc<ScenarioGrid>, String>;

type Memo = HashMap<Uuid, Arc<OnceCell<Outcome>>>;

/// One request's (or WebSocket operation's) evaluations: its budget and the grids already
/// computed, by scenario. Cheap to clone; clones share both.
#[derive(Clone)]
pub struct EvalSession {
    budget: Arc<EvalBudget>,
    grids: Arc<Mutex<Memo>>,
    /// Evaluations in flight, for whoever schedules the request's other work (the GraphQL
    /// face's batching waits while one runs).
    in_flight: Arc<AtomicUsize>,
}

impl EvalSession {
    /// A session charging `budget` (which a batch of operations may share), counting its
    /// evaluations in flight in `in_flight`.
    pub fn new(budget: Arc<EvalBudget>, in_flight: Arc<AtomicUsize>) -> Self {
        Self {
            budget,
            grids: Arc::default(),
            in_flight,
        }
    }

    /// The budget charged.
    pub fn budget(&self) -> &EvalBudget {
        &self.budget
    }

    /// Forget the computed grids: after a mutation they may be stale.
    pub fn forget(&self) {
        if let Ok(mut grids) = self.grids.lock() {
            grids.clear();
        }
    }

    /// Forget the grids and refill the budget, for the next event of a subscription.
    pub fn reset(&self) {
        self.forget();
        self.budget.reset();
    }

    fn cell(&self, scenario: Uuid) -> Arc<OnceCell<Outcome>> {
        // A poisoned lock only means another field panicked; the memo is still a valid map.
        let mut grids = self.grids.lock().unwrap_or_else(|e| e.into_inner());
        grids.entry(scenario).or_default().clone()
    }
}

/// Evaluations so far, for tests and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationStats {
    /// Scenario grids computed.
    pub evaluations: u64,
    /// Cells (metric × period) computed.
    pub cells: u64,
    /// Cost charged to budgets (cells × formula nodes).
    pub cost: u64,
}

/// Counts one evaluation in flight for as long as it lives (also when its future is dropped).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Counters {
    evaluations: AtomicU64,
    cells: AtomicU64,
    cost: AtomicU64,
}

/// Runs evaluations on blocking threads, a bounded number at a time. Held by the [`Core`].
#[derive(Clone)]
pub(crate) struct Evaluator {
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
}

impl Evaluator {
    /// An evaluator running at most `permits` evaluations at once.
    pub(crate) fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            counters: Arc::default(),
        }
    }

    async fn run(
        &self,
        budget: Arc<EvalBudget>,
        scenario: Uuid,
        data: ModelData,
    ) -> AppResult<ScenarioGrid> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        let counters = self.counters.clone();
        // The permit moves into the task: it is held until the work ends, even when the request
        // that started it is cancelled meanwhile.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let (grid, cost) = evaluate_scenario(scenario, data, &budget)?;
            let cells = grid.values.values().map(|v| v.len() as u64).sum::<u64>();
            counters.evaluations.fetch_add(1, Ordering::Relaxed);
            counters.cells.fetch_add(cells, Ordering::Relaxed);
            counters.cost.fetch_add(cost, Ordering::Relaxed);
            Ok(grid)
        })
        .await
        .map_err(AppError::internal)?
    }
}

impl Core {
    /// A fresh budget of `FV_EVAL_BUDGET`, for one request.
    pub fn eval_budget(&self) -> Arc<EvalBudget> {
        Arc::new(EvalBudget::new(self.settings.eval_budget))
    }

    /// Every metric of `scenario` over its model's timeline: from the session's memo, else
    /// loaded with `load`, charged to the session's budget and evaluated off the async workers.
    /// Concurrent callers for the same scenario wait for one evaluation. A refusal by the budget
    /// is remembered like a grid; after any other failure the next caller tries again.
    pub async fn evaluate<F, Fut, E>(
        &self,
        session: &EvalSession,
        scenario: Uuid,
        load: F,
    ) -> Result<Arc<ScenarioGrid>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ModelData, E>>,
        E: From<AppError>,
    {
        let cell = session.cell(scenario);
        let outcome = cell
            .get_or_try_init(|| async {
                let data = load().await?;
                let in_flight = InFlight::start(&session.in_flight);
                let result = self
                    .evaluator
                    .run(session.budget.clone(), scenario, data)
                    .await;
                drop(in_flight);
                match result {
                    Ok(grid) => Ok(Ok(Arc::new(grid))),
                    Err(AppError::TooComplex(message)) => Ok(Err(message)),
                    Err(other) => Err(E::from(other)),
                }
            })
            .await?;
        match outcome {
            Ok(grid) => Ok(grid.clone()),
            Err(message) => Err(E::from(AppError::TooComplex(message.clone()))),
        }
    }

    /// Evaluations run by this core so far.
    pub fn evaluation_stats(&self) -> EvaluationStats {
        let c = &self.evaluator.counters;
        EvaluationStats {
            evaluations: c.evaluations.load(Ordering::Relaxed),
            cells: c.cells.load(Ordering::Relaxed),
            cost: c.cost.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_charge_spends_nothing() {
        let budget = EvalBudget::new(100);
        assert!(budget.charge(60).is_ok());
        let refused = budget.charge(41).expect_err("over the budget");
        assert!(matches!(&refused, AppError::TooComplex(m) if m.contains("budget of 100")));
        assert_eq!(budget.spent(), 60);
        assert!(budget.charge(40).is_ok());
        assert!(budget.charge(u64::MAX).is_err(), "no overflow");
        budget.reset();
        assert_eq!(budget.spent(), 0);
    }
}
