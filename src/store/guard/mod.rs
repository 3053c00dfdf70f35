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
use super::Stores;

/// Wraps both stores; `budget` bounds every call.
pub fn guard(stores: Stores, budget: Duration) -> Stores {
    Stores { durable: Arc::new(GuardedDurable::new(stores.durable, budget)), ephemeral: Arc::new(GuardedEphemeral::new(stores.ephemeral, budget)) }
}
