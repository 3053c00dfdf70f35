//! A node's way out: once asked to stop, it drains (still serving, but telling load balancers
//! through `/readyz` that it is going), then stops accepting and waits, boundedly, for the
//! requests it has.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    hurry: Notify,
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Ends the drain period early (an operator's second signal).
    pub fn hurry(&self) {
        self.hurry.notify_one();
    }

    /// Resolves once `hurry` is called (also when it was called before).
    pub async fn hurried(&self) {
        self.hurry.notified().await
    }
}

/// Counts the request while it is handled. While draining, the answer closes its connection, so
/// clients that keep connections open reconnect (through the load balancer, to another node)
/// instead of holding on to this one until it stops.
pub async fn track(State(lifecycle): State<Arc<Lifecycle>>, request: Request, next: Next) -> Response {
    let _counted = InFlight::enter(&lifecycle);
    let mut response = next.run(request).await;
    if lifecycle.is_draining() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// One request in flight; dropped when it is answered or abandoned.
struct InFlight<'a>(&'a Lifecycle);

impl<'a> InFlight<'a> {
    fn enter(lifecycle: &'a Lifecycle) -> Self {
        lifecycle.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(lifecycle)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_until_answered_or_abandoned() {
        let lifecycle = Lifecycle::default();
        let first = InFlight::enter(&lifecycle);
        let second = InFlight::enter(&lifecycle);
        assert_eq!(lifecycle.in_flight(), 2);
        drop(first);
        assert_eq!(lifecycle.in_flight(), 1);
        drop(second);
        assert_eq!(lifecycle.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_hurry_before_anyone_waits_is_not_lost() {
        let lifecycle = Lifecycle::default();
        lifecycle.hurry();
        tokio::time::timeout(std::time::Duration::from_secs(1), lifecycle.hurried()).await.expect("the earlier hurry counts");
    }
}
