//! Dispatches a request's DataLoader batches when the request has nothing left to do.
//!
//! async-graphql's DataLoader sends a batch a fixed delay after its first key. Resolving a list
//! of more than 30 items, async-graphql polls the items through `FuturesOrdered`, which yields
//! every 32 futures; when that takes longer than the delay (a debug build, a busy machine), one
//! level of the query is split into several batches and the statement count grows with the rows.
//!
//! The gate replaces the timing with a fact, as JavaScript's DataLoader does with its tick: the
//! loader's batch tasks are parked, and released only when the request future returns `Pending`
//! without having woken itself — that is, when every resolver of the level is blocked on a load.
//! By then every key of the level is registered, so each level is one batch per key type.
//! Work the request waits for off its own task (a scenario evaluated on a blocking thread) is
//! counted in [`IdleGate::busy`]: while any is in flight the request is not idle, since the
//! fields it completes will register more keys of the same level.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::future::BoxFuture;

/// Batch tasks waiting for their request to go idle.
#[derive(Default)]
pub struct IdleGate {
    parked: Mutex<Vec<BoxFuture<'static, ()>>>,
    busy: Arc<AtomicUsize>,
    /// The request's waker, to poll it again when released batches finish: only then may the
    /// next level go (see [`IdleGate::release`]).
    request: Arc<Mutex<Option<Waker>>>,
}

impl IdleGate {
    /// The count of work in flight outside the request's task; the gate releases nothing while
    /// it is above zero. Whoever starts such work increments it and decrements it when done.
    pub fn busy(&self) -> Arc<AtomicUsize> {
        self.busy.clone()
    }

    /// Park a batch task (the DataLoader's spawner). It keeps the request's statement count
    /// and trace span (`db::stats::propagate`): it is spawned as a task of its own later.
    pub fn park(&self, task: BoxFuture<'static, ()>) {
        let task = crate::domain::propagate_request(task);
        match self.parked.lock() {
            Ok(mut parked) => parked.push(task),
            // A poisoned lock only means another thread panicked; never lose a batch.
            Err(_) => {
                tokio::spawn(task);
            }
        }
    }

    /// Start every parked task. Each counts as busy until it has finished: a level's batches of
    /// different key types finish one after another, and the results of the first let resolvers
    /// register keys of the next level while the others are still loading; releasing then would
    /// split that level into several batches. When the last one finishes, the request is polled
    /// again to decide.
    fn release(&self) {
        let tasks = match self.parked.lock() {
            Ok(mut parked) => std::mem::take(&mut *parked),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let busy = self.busy.clone();
            let request = self.request.clone();
            busy.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Dropped also if the batch panics: the request must never wait for it forever.
                let _done = Finished { busy, request };
                task.await;
            });
        }
    }

    /// Run `request`, releasing parked batches whenever it goes idle.
    pub fn run<F: Future>(self: Arc<Self>, request: F) -> Gated<F> {
        Gated {
            inner: Box::pin(request),
            gate: self,
        }
    }
}

/// Marks a released batch finished: one less in flight, and the request polled again.
struct Finished {
    busy: Arc<AtomicUsize>,
    request: Arc<Mutex<Option<Waker>>>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
        let waker = self.request.lock().ok().and_then(|w| w.clone());
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A request future driven through its gate.
pub struct Gated<F: Future> {
    inner: Pin<Box<F>>,
    gate: Arc<IdleGate>,
}

/// Records whether the request woke itself while being polled (a cooperative yield).
struct WakeFlag {
    woken: AtomicBool,
    waker: Waker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.waker.wake_by_ref();
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Ok(mut slot) = self.gate.request.lock()
            && !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        {
            *slot = Some(cx.waker().clone());
        }
        let flag = Arc::new(WakeFlag {
            woken: AtomicBool::new(false),
            waker: cx.waker().clone(),
        });
        let waker = Waker::from(flag.clone());
        let mut inner_cx = Context::from_waker(&waker);
        match self.inner.as_mut().poll(&mut inner_cx) {
            Poll::Ready(output) => {
                // Batches parked by the last step (none should be) must not be lost.
                self.gate.release();
                Poll::Ready(output)
            }
            Poll::Pending => {
                if !flag.woken.load(Ordering::SeqCst) && self.gate.busy.load(Ordering::SeqCst) == 0
                {
                    self.gate.release();
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use async_graphql::dataloader::{DataLoader, Loader};

    use super::*;

    /// Counts its batches.
    struct Counting(Arc<Mutex<Vec<usize>>>);

    impl Loader<u32> for Counting {
        type Value = u32;
        type Error = ();

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, ()> {
            self.0.lock().unwrap().push(keys.len());
            Ok(keys.iter().map(|k| (*k, k * 2)).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wide_level_is_one_batch_even_when_resolution_is_slow() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(IdleGate::default());
        let parking = gate.clone();
        let loader = DataLoader::new(Counting(batches.clone()), move |task| parking.park(task));
        let loader = &loader;
        let request = async {
            // 100 "resolvers", each working (blocking the thread) before it loads: far longer
            // than the DataLoader's 1 ms delay in total.
            futures_util::future::join_all((0..100u32).map(|i| async move {
                tokio::task::yield_now().await;
                std::thread::sleep(Duration::from_micros(100));
                loader.load_one(i).await.unwrap()
            }))
            .await
        };
        let values = gate.run(request).await;
        assert_eq!(values.len(), 100);
        assert_eq!(*batches.lock().unwrap(), vec![100]);
    }
}
