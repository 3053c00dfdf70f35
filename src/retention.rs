//! Pruning what outlived its retention: audit events (`audit.retention`), API keys that stopped
//! working and API-key usage rows (`api_keys.retention`), refresh-token families a day after they
//! expired or were revoked (their tokens, used ones included, go with them). Every `audit.prune_interval` one node
//! (whichever takes the round's lease) deletes in bounded batches, so no statement holds locks
//! for long and a table of millions of rows is worked down over a few rounds if need be.

use std::time::Duration;

use crate::clock::UnixTime;
use crate::config::Config;
use crate::store::{Durable, Ephemeral, StoreResult};

/// Rows per DELETE statement.
const BATCH: i64 = 5_000;
/// How long a refresh-token family is kept after it expired or was revoked.
const ENDED_FAMILY_KEPT: UnixTime = 86_400;
/// Batches per table per round: at most a million rows a round, then the next round goes on.
const MAX_BATCHES: usize = 200;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub audit_events: u64,
    pub api_keys: u64,
    pub api_key_usage: u64,
    pub refresh_families: u64,
}

/// One pruning round at `now` with the configured retentions (a zero retention keeps forever).
pub async fn prune(durable: &dyn Durable, config: &Config, now: UnixTime) -> StoreResult<Pruned> {
    let mut pruned = Pruned::default();
    if let Some(before) = cutoff(now, config.audit.retention) {
        pruned.audit_events = batches(|| durable.prune_audit(before, BATCH)).await?;
    }
    if let Some(before) = cutoff(now, config.api_keys.retention) {
        pruned.api_keys = batches(|| durable.prune_api_keys(before, BATCH)).await?;
        pruned.api_key_usage = batches(|| durable.prune_api_key_usage(before, BATCH)).await?;
    }
    // An ended family's tokens work no more, its access tokens have expired (or their denial is
    // recorded apart); a day's margin keeps it for whoever looks into a revocation.
    pruned.refresh_families = batches(|| durable.prune_refresh_families(now - ENDED_FAMILY_KEPT, BATCH)).await?;
    Ok(pruned)
}

fn cutoff(now: UnixTime, retention: Duration) -> Option<UnixTime> {
    (!retention.is_zero()).then(|| now - retention.as_secs() as i64)
}

async fn batches<F, Fut>(mut one: F) -> StoreResult<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let n = one().await?;
        total += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(total)
}

/// A round happens on one node per interval: the lease is taken for a little less than the
/// interval, so the next round is free to any node.
async fn take_round(ephemeral: &dyn Ephemeral, interval: Duration, now: UnixTime) -> StoreResult<bool> {
    let round = now.div_euclid(interval.as_secs().max(1) as i64);
    let lease = interval.saturating_sub(Duration::from_millis(100)).max(Duration::from_millis(1));
    ephemeral.put_if_absent(&format!("retention:round:{round}"), b"1", lease).await
}

/// Prunes every `audit.prune_interval` on this node when it wins the round.
pub fn spawn_pruner(state: crate::state::AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = state.config.audit.prune_interval;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = state.now();
            match take_round(state.ephemeral.as_ref(), interval, now).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "pruning waits for the ephemeral store");
                    continue;
                }
            }
            match prune(state.durable.as_ref(), &state.config, now).await {
                Ok(p) if p == Pruned::default() => {}
                Ok(p) => tracing::info!(audit_events = p.audit_events, api_keys = p.api_keys, api_key_usage = p.api_key_usage, refresh_families = p.refresh_families, "pruned what outlived its retention"),
                Err(e) => tracing::warn!(error = %e, "pruning failed; retrying next round"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_retention_keeps_forever() {
        assert_eq!(cutoff(1_000, Duration::ZERO), None);
        assert_eq!(cutoff(1_000, Duration::from_secs(100)), Some(900));
    }
}
