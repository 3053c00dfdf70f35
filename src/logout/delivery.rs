//! The outbox worker: every node runs one. Each round claims the due deliveries (a lease, so one
//! node sends each attempt), POSTs the logout tokens concurrently, and records the outcome:
//! delivered, retried after a backoff, or given up after the last attempt (audited and counted).

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use tokio::task::JoinHandle;

use super::token;
use crate::audit::{self, Event};
use crate::clock::UnixTime;
use crate::state::AppState;
use crate::store::{LogoutDelivery, LogoutOutcome};
use crate::tokens::access::Issuer;

/// The wait after each failed attempt; after the last, the delivery is given up (about 1 h 45 min
/// after the session ended).
pub const BACKOFF_SECONDS: [i64; 6] = [5, 30, 120, 600, 1800, 3600];
/// An attempt owns its delivery this long (well over the outbound request's 5 s limit).
const LEASE_SECONDS: i64 = 60;
const BATCH: i64 = 32;
/// How often a worker looks for due deliveries when nothing woke it.
const POLL: Duration = Duration::from_secs(1);
/// Settled deliveries are kept this long for the record.
const KEEP_SECONDS: i64 = 7 * 24 * 3600;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What to do after attempt number `attempts` failed.
pub fn after_failure(attempts: i64, now: UnixTime, error: String) -> LogoutOutcome {
    match BACKOFF_SECONDS.get((attempts.max(1) - 1) as usize) {
        Some(wait) => LogoutOutcome::Retry { next_attempt_at: now + wait, error },
        None => LogoutOutcome::GaveUp { at: now, error },
    }
}

pub fn spawn_worker(state: &AppState) -> JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if let Err(e) = deliver_due(&state).await {
                tracing::warn!(error = %e, "back-channel logout round failed; retrying");
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                match state.durable.prune_logouts(state.now() - KEEP_SECONDS).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "pruned settled back-channel logout deliveries"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning back-channel logout deliveries failed"),
                }
            }
            let _ = tokio::time::timeout(POLL, state.logout_wakeup.notified()).await;
        }
    })
}

/// One round: claims what is due and attempts it. Returns how many attempts were made.
pub async fn deliver_due(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let now = state.now();
    let claimed = state.durable.claim_logouts(now, now + LEASE_SECONDS, BATCH).await?;
    let attempts = claimed.len();
    join_all(claimed.into_iter().map(|d| attempt(state, d))).await;
    Ok(attempts)
}

async fn attempt(state: &AppState, d: LogoutDelivery) {
    let outcome = match send(state, &d).await {
        Ok(()) => LogoutOutcome::Delivered { at: state.now() },
        Err(Failure::Permanent(error)) => LogoutOutcome::GaveUp { at: state.now(), error },
        Err(Failure::Transient(error)) => after_failure(d.attempts, state.now(), error),
    };
    let (label, ok, reason) = match &outcome {
        LogoutOutcome::Delivered { .. } => ("delivered", true, None),
        LogoutOutcome::Retry { error, .. } => ("retry", false, Some(error.as_str())),
        LogoutOutcome::GaveUp { error, .. } => ("gave_up", false, Some(error.as_str())),
    };
    state.metrics.logout_delivery(label);
    tracing::info!(client_id = %d.client_id, attempt = d.attempts, outcome = label, reason = reason.unwrap_or(""), "back-channel logout");
    if let Err(e) = state.durable.settle_logout(&d.id, &outcome).await {
        // The lease runs out and the delivery is attempted again: at least once, not at most.
        tracing::warn!(error = %e, "recording a back-channel logout outcome failed");
    }
    if label != "retry" {
        let event = Event {
            kind: if ok { "logout.backchannel.delivered" } else { "logout.backchannel.gave_up" },
            subject: &d.client_id,
            caller: None,
            ok,
            reason,
            details: json!({"sub": d.sub, "sid": d.sid, "attempts": d.attempts}),
        };
        if let Err(e) = audit::record(state, event).await {
            tracing::warn!(error = ?e, "auditing a back-channel logout failed");
        }
    }
}

enum Failure {
    /// Will not get better by waiting: the client is gone or no longer has a URI.
    Permanent(String),
    Transient(String),
}

async fn send(state: &AppState, d: &LogoutDelivery) -> Result<(), Failure> {
    let client = state.client(&d.client_id).await.map_err(|e| Failure::Transient(format!("loading the client: {e}")))?;
    let Some(uri) = client.and_then(|c| c.backchannel_logout_uri) else {
        return Err(Failure::Permanent("the client was removed or has no backchannel_logout_uri".into()));
    };
    let token = token::sign(Issuer::of(state), &d.client_id, &d.sub, &d.sid, state.now()).map_err(|e| Failure::Transient(format!("signing: {e:?}")))?;
    match state.backchannel_http.post_form(&uri, &[("logout_token", &token)]).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure::Transient(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_then_give_up() {
        let retry_at = |attempts| match after_failure(attempts, 1000, "down".into()) {
            LogoutOutcome::Retry { next_attempt_at, .. } => Some(next_attempt_at - 1000),
            _ => None,
        };
        assert_eq!(retry_at(1), Some(5));
        assert_eq!(retry_at(2), Some(30));
        assert_eq!(retry_at(6), Some(3600));
        assert_eq!(retry_at(7), None, "the seventh failure is the last");
        assert!(matches!(after_failure(7, 1000, "down".into()), LogoutOutcome::GaveUp { at: 1000, .. }));
    }
}
