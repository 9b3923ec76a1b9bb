//! What every request carries: the caller, the core, and its own DataLoader.

use async_graphql::{
    Context,
    dataloader::{DataLoader, HashMapCache},
};

use std::sync::Arc;

use super::idle_gate::IdleGate;
use crate::domain::{
    Core, Route,
    auth::Caller,
    loader::RequestLoader,
    modelling::evaluation::{EvalBudget, EvalSession},
};

/// Per-request (or per-WebSocket-connection) state, attached with `Request::data` so that a
/// batch never mixes two callers.
pub struct RequestState {
    /// Who is calling and from where; replaced when an operation of this request changes the
    /// caller's own roles ([`RequestState::reread_caller`]).
    caller: std::sync::RwLock<Arc<Caller>>,
    /// The core.
    pub core: Core,
    /// The user who signed in (`register`/`login`) during this request: they may see their own
    /// private fields in the payload although the request itself carried no token.
    pub signed_in: std::sync::OnceLock<uuid::Uuid>,
    /// The scenarios evaluated for this operation and the evaluation budget they are charged to.
    pub evaluations: EvalSession,
}

/// Build the data a request carries: its state and a fresh DataLoader. With a `gate` (see
/// [`IdleGate`]) its batches wait until the request, run with `gate.run(…)`, goes idle; without
/// one (WebSocket operations, which async-graphql drives itself) they use the DataLoader's timer.
/// `budget` is the evaluation budget of the whole request (the operations of an HTTP batch share
/// one, from [`Core::eval_budget`]).
///
/// A query's loader caches every row it loads for the rest of the request and lets a child's
/// load prime its parents, so nothing is fetched twice. A mutation's (`reads_after_writes`)
/// does neither: its payload must read what the mutation wrote, not what a guard read before.
///
/// `route` says where its reads go (a query's to a replica, with replicas configured) and
/// collects its commits (`x-fv-lsn`).
pub fn request_data(
    core: &Core,
    caller: Caller,
    gate: Option<&Arc<IdleGate>>,
    budget: Arc<EvalBudget>,
    reads_after_writes: bool,
    route: Route,
) -> (RequestState, RequestLoader) {
    let core = &core.for_request(route).for_viewer(&caller.viewer);
    // Evaluations in flight keep the gate from dispatching a level's batches half-registered.
    let busy = gate.map_or_else(Default::default, |g| g.busy());
    let loader = match gate {
        Some(gate) => {
            let parking = gate.clone();
            // The gate releases a batch only once every key of the level is registered and no
            // earlier batch is still loading, so the loader's own delay would only add a
            // millisecond per level, and its timer (async-io's, on a thread of its own) a
            // cross-thread wake-up: a zero delay completes at once.
            let source = if reads_after_writes {
                core.unprimed_loader()
            } else {
                core.loader()
            };
            let loader = DataLoader::with_cache(
                source,
                move |task| parking.park(task),
                HashMapCache::default(),
            )
            .delay(std::time::Duration::ZERO);
            loader.enable_all_cache(!reads_after_writes);
            loader
        }
        None => {
            // A WebSocket connection keeps its data for hours: batch, but never serve a value
            // loaded for an earlier operation or event.
            let loader = DataLoader::with_cache(
                core.unprimed_loader(),
                |task| {
                    tokio::spawn(crate::domain::propagate_request(task));
                },
                HashMapCache::default(),
            );
            loader.enable_all_cache(false);
            loader
        }
    };
    (
        RequestState {
            caller: std::sync::RwLock::new(Arc::new(caller)),
            core: core.clone(),
            signed_in: std::sync::OnceLock::new(),
            evaluations: EvalSession::new(budget, busy),
        },
        loader,
    )
}

impl RequestState {
    /// Who is calling, as things stand in this request.
    pub fn caller(&self) -> Arc<Caller> {
        self.caller
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Read the caller's credential and roles again (one statement), after an operation that
    /// changed the caller's own roles (creating an organization, transferring it, a member
    /// changing their own role or leaving): later fields and operations of the request see the
    /// new roles. A credential that stopped working keeps the caller as it was: this request
    /// was authenticated, the next one will not be.
    pub async fn reread_caller(&self) -> crate::error::AppResult<()> {
        let current = self.caller();
        if let Some(viewer) = crate::domain::auth::reread(&self.core, &current.viewer).await? {
            // Its connections from now on see what the caller may see now (row-level security).
            self.core.set_viewer(&viewer);
            let caller = Caller {
                viewer,
                meta: current.meta.clone(),
            };
            *self
                .caller
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(caller);
        }
        Ok(())
    }
}

// The HTTP and WebSocket entry points always attach both values (`request_data`); every test
// goes through them, so a missing one is a programming error, not a runtime condition.

/// The request's state.
pub fn state<'a>(ctx: &Context<'a>) -> &'a RequestState {
    ctx.data_unchecked::<RequestState>()
}

/// The request's DataLoader.
pub fn loader<'a>(ctx: &Context<'a>) -> &'a RequestLoader {
    ctx.data_unchecked::<RequestLoader>()
}
