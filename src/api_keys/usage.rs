//! API-key usage without a database write per check. Each check counts in the ephemeral store,
//! per key per minute (the rate-limit counter doubles as the request count); the first count of
//! a key in a minute also lists the key in that minute's index. Once a minute has closed, one
//! node (whichever takes the minute's lease) reads the index and the counters and writes one
//! row per key to the database, then marks the minute done. A node that dies mid-flush leaves
//! the lease to run out and another node flushes the minute: counters outlive the look-back.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::clock::UnixTime;
use crate::store::{ApiKey, ApiKeyUsage, Durable, Ephemeral, StoreError, StoreResult};

/// How long a minute's counters and index wait to be flushed.
const KEEP: Duration = Duration::from_secs(20 * 60);
/// Minutes a flusher looks back for one not yet flushed; shorter than `KEEP`.
const LOOK_BACK: i64 = 15;
/// A minute is closed this long after it ends: a check that began inside it has counted.
const SETTLE_SECONDS: i64 = 5;
/// A flush that takes longer than this is presumed dead and another node may redo it.
const LEASE: Duration = Duration::from_secs(60);

pub fn minute_of(now: UnixTime) -> i64 {
    now.div_euclid(60)
}

/// The counter of checks that passed the key's rules in `minute` (the rate limit's count).
pub fn admitted_counter(key_id: &str, minute: i64) -> String {
    format!("apikey:rate:{key_id}:{minute}")
}

fn denied_counter(key_id: &str, minute: i64) -> String {
    format!("apikey:denied:{key_id}:{minute}")
}

fn index(minute: i64) -> String {
    format!("apikey:usage:{minute}")
}

fn lease(minute: i64) -> String {
    format!("apikey:usage:lease:{minute}")
}

fn done(minute: i64) -> String {
    format!("apikey:usage:done:{minute}")
}

/// An index member: the key and the rate limit its count is split by.
fn member(key: &ApiKey) -> String {
    format!("{} {}", key.id, key.rate_limit_per_minute.max(0))
}

/// Counts a check of `key` that passed its rules; returns the count this minute, which the
/// rate limit judges.
pub async fn count_admitted(ephemeral: &dyn Ephemeral, key: &ApiKey, now: UnixTime) -> StoreResult<i64> {
    count(ephemeral, key, minute_of(now), admitted_counter).await
}

/// Counts a check of `key` refused by its rules; returns the count this minute.
pub async fn count_denied(ephemeral: &dyn Ephemeral, key: &ApiKey, now: UnixTime) -> StoreResult<i64> {
    count(ephemeral, key, minute_of(now), denied_counter).await
}

/// Adds one to `key`'s `counter` of `minute`; the first count lists the key in the minute's index.
async fn count(ephemeral: &dyn Ephemeral, key: &ApiKey, minute: i64, counter: fn(&str, i64) -> String) -> StoreResult<i64> {
    let count = ephemeral.incr(&counter(&key.id, minute), KEEP).await?;
    if count == 1 {
        ephemeral.add_member(&index(minute), &member(key), KEEP).await?;
    }
    Ok(count)
}

/// The latest minute no check can still count in at `now`.
fn last_closed(now: UnixTime) -> i64 {
    minute_of(now - SETTLE_SECONDS) - 1
}

/// What one node remembers between rounds: minutes it saw done, so it does not ask again.
#[derive(Default)]
pub struct Flusher {
    done: BTreeSet<i64>,
}

impl Flusher {
    /// Flushes every closed minute of the look-back window not yet done; returns the rows written.
    pub async fn flush_closed(&mut self, durable: &dyn Durable, ephemeral: &dyn Ephemeral, now: UnixTime) -> StoreResult<usize> {
        let last_closed = last_closed(now);
        let first = last_closed - LOOK_BACK + 1;
        self.done = self.done.split_off(&first);
        let mut written = 0;
        for minute in first..=last_closed {
            if self.done.contains(&minute) {
                continue;
            }
            if let Some(rows) = flush_minute(durable, ephemeral, minute).await? {
                written += rows;
                self.done.insert(minute);
            }
        }
        Ok(written)
    }
}

/// Flushes `minute` unless it is done or another node holds it: Some(rows written) when this
/// call finished it (or found it done), None when another node is on it.
async fn flush_minute(durable: &dyn Durable, ephemeral: &dyn Ephemeral, minute: i64) -> StoreResult<Option<usize>> {
    if ephemeral.get(&done(minute)).await?.is_some() {
        return Ok(Some(0));
    }
    if !ephemeral.put_if_absent(&lease(minute), b"1", LEASE).await? {
        return Ok(None);
    }
    match write_minute(durable, ephemeral, minute).await {
        Ok(rows) => {
            ephemeral.put(&done(minute), b"1", KEEP).await?;
            Ok(Some(rows))
        }
        Err(e) => {
            // Let the next round (here or on another node) try again at once.
            let _ = ephemeral.delete(&lease(minute)).await;
            Err(e)
        }
    }
}

async fn write_minute(durable: &dyn Durable, ephemeral: &dyn Ephemeral, minute: i64) -> StoreResult<usize> {
    let mut rows = Vec::new();
    for entry in ephemeral.members(&index(minute)).await? {
        let Some((key_id, limit)) = entry.split_once(' ') else { continue };
        let limit: i64 = limit.parse().unwrap_or(i64::MAX);
        let count = |bytes: Option<Vec<u8>>| bytes.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let requests = count(ephemeral.get(&admitted_counter(key_id, minute)).await?);
        let denied = count(ephemeral.get(&denied_counter(key_id, minute)).await?);
        rows.push(usage_row(key_id, minute, requests, limit, denied));
    }
    if !rows.is_empty() {
        durable.record_api_key_usage(&rows).await?;
    }
    Ok(rows.len())
}

fn usage_row(key_id: &str, minute: i64, requests: i64, limit: i64, denied: i64) -> ApiKeyUsage {
    ApiKeyUsage { key_id: key_id.to_string(), minute: minute * 60, requests, rate_limited: (requests - limit).max(0), denied }
}

/// Runs `Flusher::flush_closed` every `interval` on this node.
pub fn spawn_flusher(state: crate::state::AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut flusher = Flusher::default();
        let mut tick = tokio::time::interval(state.config.api_keys.usage_flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match flusher.flush_closed(state.durable.as_ref(), state.ephemeral.as_ref(), state.now()).await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "flushed API-key usage"),
                Err(StoreError::Unavailable(e)) => tracing::debug!(error = %e, "flushing API-key usage waits for the stores"),
                Err(e) => tracing::warn!(error = %e, "flushing API-key usage failed; retrying next round"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_splits_its_count_at_the_rate_limit() {
        assert_eq!(usage_row("k", 2, 7, 10, 1), ApiKeyUsage { key_id: "k".into(), minute: 120, requests: 7, rate_limited: 0, denied: 1 });
        assert_eq!(usage_row("k", 2, 15, 10, 0).rate_limited, 5);
    }

    #[test]
    fn a_minute_closes_a_few_seconds_after_it_ends() {
        // Minute 1 runs from second 60 to 120; it is closed from second 125 on.
        assert_eq!(last_closed(124), 0);
        assert_eq!(last_closed(125), 1);
        assert_eq!(last_closed(179), 1);
        assert!(Duration::from_secs(LOOK_BACK as u64 * 60) < KEEP, "counters outlive the look-back");
    }
}
