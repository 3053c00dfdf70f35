//! A circuit breaker in front of one store. Every call gets a time budget; a call that finds
//! the store unreachable, or runs out of budget, opens the gate. While it is open, calls fail
//! at once (503 to the caller, no waiting) and a background probe pings the store every
//! `PROBE_EVERY` until it answers, which closes the gate again on this node by itself.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::store::{StoreError, StoreResult};

/// How often an open gate pings its store: recovery is seen within this (plus one ping).
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, StoreResult<()>> + Send + Sync>;

#[derive(Clone)]
pub struct Gate(Arc<State>);

struct State {
    name: &'static str,
    budget: Duration,
    up: AtomicBool,
    probing: AtomicBool,
    probe: Probe,
}

impl Gate {
    /// `name` is what logs and errors call the store; `probe` pings it.
    pub fn new(name: &'static str, budget: Duration, probe: Probe) -> Self {
        Self(Arc::new(State { name, budget, up: AtomicBool::new(true), probing: AtomicBool::new(false), probe }))
    }

    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::Acquire)
    }

    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// Runs `work` within the budget, unless the store is known to be down.
    pub async fn run<T>(&self, work: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        if !self.is_up() {
            return Err(StoreError::Unavailable(format!("{} is unreachable (waiting for it to come back)", self.0.name)));
        }
        match tokio::time::timeout(self.0.budget, work).await {
            Ok(Err(StoreError::Unavailable(why))) => {
                self.trip(&why);
                Err(StoreError::Unavailable(why))
            }
            Ok(done) => done,
            Err(_) => {
                let why = format!("{} did not answer within {} ms", self.0.name, self.0.budget.as_millis());
                self.trip(&why);
                Err(StoreError::Unavailable(why))
            }
        }
    }

    fn trip(&self, why: &str) {
        if self.0.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(store = self.0.name, reason = why, "store unreachable: answering 503 at once until it is back");
        }
        if !self.0.probing.swap(true, Ordering::AcqRel) {
            tokio::spawn(probe_until_up(self.0.clone()));
        }
    }
}

async fn probe_until_up(state: Arc<State>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if matches!(tokio::time::timeout(state.budget, (state.probe)()).await, Ok(Ok(()))) {
            // Probing ends before the gate opens, so a trip in between starts a new probe.
            state.probing.store(false, Ordering::Release);
            state.up.store(true, Ordering::Release);
            tracing::info!(store = state.name, "store reachable again");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;

    fn gate_with(healthy: Arc<AtomicBool>, pings: Arc<AtomicUsize>) -> Gate {
        let probe: Probe = Arc::new(move || {
            let (healthy, pings) = (healthy.clone(), pings.clone());
            Box::pin(async move {
                pings.fetch_add(1, Ordering::SeqCst);
                if healthy.load(Ordering::SeqCst) { Ok(()) } else { Err(StoreError::Unavailable("down".into())) }
            })
        });
        Gate::new("test store", Duration::from_millis(100), probe)
    }

    #[tokio::test]
    async fn a_hanging_call_opens_the_gate_and_later_calls_fail_at_once_until_the_probe_succeeds() {
        let (healthy, pings) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let gate = gate_with(healthy.clone(), pings.clone());
        let started = Instant::now();
        let hung = gate.run(std::future::pending::<StoreResult<()>>()).await;
        assert!(matches!(hung, Err(StoreError::Unavailable(_))) && started.elapsed() < Duration::from_millis(500));
        assert!(!gate.is_up());
        let started = Instant::now();
        let refused = gate.run(async { Ok::<_, StoreError>(1) }).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))), "an open gate does not even try");
        assert!(started.elapsed() < Duration::from_millis(10));
        healthy.store(true, Ordering::SeqCst);
        tokio::time::sleep(PROBE_EVERY * 3).await;
        assert!(gate.is_up(), "the probe closed the gate");
        assert_eq!(gate.run(async { Ok::<_, StoreError>(7) }).await.unwrap(), 7);
        let seen = pings.load(Ordering::SeqCst);
        tokio::time::sleep(PROBE_EVERY * 2).await;
        assert_eq!(pings.load(Ordering::SeqCst), seen, "no probing while the store is up");
    }

    #[tokio::test]
    async fn only_unreachability_opens_the_gate() {
        let gate = gate_with(Arc::new(AtomicBool::new(true)), Arc::new(AtomicUsize::new(0)));
        let conflict = gate.run(async { Err::<(), _>(StoreError::Conflict("x".into())) }).await;
        assert!(matches!(conflict, Err(StoreError::Conflict(_))));
        assert!(gate.is_up(), "a constraint violation says nothing about the store's health");
        let _ = gate.run(async { Err::<(), _>(StoreError::Unavailable("refused".into())) }).await;
        assert!(!gate.is_up());
    }
}
