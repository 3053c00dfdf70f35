//! The back-channel logout outbox on SQLite and PostgreSQL, as `LogoutOutboxStore` documents
//! it: a due delivery is claimed by exactly one of many concurrent claimers, a live lease keeps
//! it from others and an expired one gives it back (a crashed node's work is taken over), a retry
//! waits for its time, settled deliveries are never claimed again and are pruned when old.

use std::sync::Arc;

use sesame::store::{LogoutDelivery, LogoutOutcome};
use tokio::sync::Barrier;

use crate::stores::store_for;
use crate::support::harness::{Database, Tests};

pub fn tests(t: &mut Tests) {
    t.each_database("durable_logout_outbox", durable_logout_outbox);
}

fn delivery(id: &str, sid: &str, due: i64) -> LogoutDelivery {
    LogoutDelivery { id: id.into(), client_id: "app".into(), sub: "user-1".into(), sid: sid.into(), created_at: 1_000, attempts: 0, next_attempt_at: due }
}

async fn durable_logout_outbox(database: Database) {
    let (_db, store) = store_for(database).await;
    store.enqueue_logouts(&[delivery("d1", "s1", 1_000), delivery("d2", "s1", 1_000), delivery("d3", "s2", 5_000)]).await.unwrap();

    // Eight nodes claim at once: each due delivery goes to exactly one of them, the one not due
    // yet to none.
    let barrier = Arc::new(Barrier::new(8));
    let claims = (0..8).map(|_| {
        let (store, barrier) = (store.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            store.claim_logouts(1_000, 1_060, 10).await.unwrap()
        })
    });
    let claims: Vec<_> = claims.collect();
    let mut won: Vec<LogoutDelivery> = Vec::new();
    for claim in claims {
        won.extend(claim.await.unwrap());
    }
    let mut ids: Vec<&str> = won.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["d1", "d2"], "{database:?}: each due delivery claimed once");
    assert!(won.iter().all(|d| d.attempts == 1), "a claim is an attempt");

    // Leased: nobody else gets them until the lease ends; then they come back (a crashed node).
    assert!(store.claim_logouts(1_030, 1_090, 10).await.unwrap().is_empty(), "{database:?}: the lease holds");
    let taken_over = store.claim_logouts(1_060, 1_120, 10).await.unwrap();
    assert_eq!(taken_over.len(), 2, "{database:?}: an expired lease gives the delivery back");
    assert!(taken_over.iter().all(|d| d.attempts == 2));

    // d1 delivered; d2 to retry at 1_200.
    store.settle_logout("d1", &LogoutOutcome::Delivered { at: 1_061 }).await.unwrap();
    store.settle_logout("d2", &LogoutOutcome::Retry { next_attempt_at: 1_200, error: "status 503".into() }).await.unwrap();
    assert!(store.claim_logouts(1_100, 1_160, 10).await.unwrap().is_empty(), "{database:?}: a retry waits for its time");
    let retried = store.claim_logouts(1_200, 1_260, 10).await.unwrap();
    assert_eq!(retried.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d2"]);
    store.settle_logout("d2", &LogoutOutcome::GaveUp { at: 1_201, error: "status 503".into() }).await.unwrap();
    assert!(store.claim_logouts(9_999, 10_059, 10).await.unwrap().iter().all(|d| d.id == "d3"), "{database:?}: settled deliveries are never claimed again");

    let of_s1 = store.logouts_of_session("s1").await.unwrap();
    assert_eq!(of_s1.iter().map(|(d, at)| (d.id.as_str(), *at)).collect::<Vec<_>>(), [("d1", Some(1_061)), ("d2", None)]);

    // Pruning removes settled deliveries older than the cut-off, never unsettled ones.
    assert_eq!(store.prune_logouts(1_001).await.unwrap(), 2, "{database:?}");
    assert!(store.logouts_of_session("s1").await.unwrap().is_empty());
    assert_eq!(store.logouts_of_session("s2").await.unwrap().len(), 1, "d3 (claimed, unsettled) stays");
}
