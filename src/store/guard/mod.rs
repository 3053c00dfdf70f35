//! The stores as the server sees them: each call within a time budget, behind a circuit
//! breaker (`gate`), so an unreachable PostgreSQL or Redis costs a request at most the budget
//! once, and nothing after that until it is back.

mod durable;
mod ephemeral;
pub mod gate;

use std::sync::Arc;
use std::time::Duration;

pub use self::durable::GuardedDurable;
pub use self::ephemeral::GuardedEphemeral;
use super::{Durable, Ephemeral, Stores};

/// Wraps the stores on the other end of a network (PostgreSQL, Redis); `budget` bounds every
/// call. SQLite and the in-process store cannot be unreachable: a slow SQLite write is waiting
/// for its turn at the one writer's lock, not a sign of an outage, so they are left as they are.
pub fn guard(stores: Stores, budget: Duration) -> Stores {
    let durable: Arc<dyn Durable> = match stores.durable.backend() {
        "postgres" => Arc::new(GuardedDurable::new(stores.durable, budget)),
        _ => stores.durable,
    };
    let ephemeral: Arc<dyn Ephemeral> = match stores.ephemeral.backend() {
        "redis" | "redis cluster" => Arc::new(GuardedEphemeral::new(stores.ephemeral, budget)),
        _ => stores.ephemeral,
    };
    Stores { durable, ephemeral }
}
