//! Signing key rotation with an injected clock: pre-publication, activation, retirement,
//! and several nodes on one database rotating only once.

use sesame::crypto::alg::SigningAlg;
use std::sync::Arc;
use std::time::Duration;

use sesame::clock::{Clock, ManualClock};
use sesame::crypto::kek::Kek;
use sesame::crypto::keyring::KeyRing;
use sesame::crypto::rotation::{KeyState, Schedule};
use sesame::store::Durable;

use crate::support::harness::{Database, Tests};
use crate::support::TestDatabase;

pub fn tests(t: &mut Tests) {
    t.each_database("keys_are_prepublished_then_activate_then_retire", keys_are_prepublished_then_activate_then_retire)
        .each_database("two_nodes_on_one_database_rotate_once", two_nodes_on_one_database_rotate_once)
        .test("a_wrong_key_encryption_key_is_refused", a_wrong_key_encryption_key_is_refused)
        .test("manual_rotation_publishes_at_once_and_signs_later", manual_rotation_publishes_at_once_and_signs_later);
}

const DAY: i64 = 86_400;
const T0: i64 = 1_800_000_000;

fn schedule() -> Schedule {
    Schedule {
        rotation_interval: Duration::from_secs(30 * DAY as u64),
        prepublish: Duration::from_secs(2 * DAY as u64),
        retention: Duration::from_secs(3600),
    }
}

async fn node(store: Arc<dyn Durable>, kek: &[u8; 32], clock: Arc<ManualClock>) -> KeyRing {
    KeyRing::start(store, Kek::from_bytes(kek).unwrap(), clock, schedule(), Box::new(|_| {})).await.unwrap()
}

fn published(ring: &KeyRing) -> Vec<String> {
    let jwks: serde_json::Value = serde_json::from_slice(&ring.current().jwks).unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

fn kid_of(ring: &KeyRing, alg: SigningAlg, state: KeyState) -> Vec<String> {
    ring.info().into_iter().filter(|k| k.alg == alg && k.state == state).map(|k| k.kid).collect()
}

async fn keys_are_prepublished_then_activate_then_retire(backend: Database) {
    let db = TestDatabase::of(backend).await;
    let clock = Arc::new(ManualClock::new(T0));
    let ring = node(db.open().await, &[1; 32], clock.clone()).await;

    // First start: one active key per algorithm.
    assert_eq!(ring.info().len(), 3, "{backend:?}");
    let first = ring.signer(SigningAlg::RS256).unwrap().kid.clone();
    assert_eq!(kid_of(&ring, SigningAlg::RS256, KeyState::Active), vec![first.clone()]);

    // Mid-period: nothing happens.
    clock.set(T0 + 10 * DAY);
    ring.rotate_if_due().await.unwrap();
    assert_eq!(ring.info().len(), 3);

    // Pre-publication: the successor is in the JWKS but does not sign yet.
    clock.set(T0 + 28 * DAY);
    ring.rotate_if_due().await.unwrap();
    let next = kid_of(&ring, SigningAlg::RS256, KeyState::Next);
    assert_eq!(next.len(), 1, "{backend:?}");
    assert!(published(&ring).contains(&next[0]));
    assert_eq!(ring.signer(SigningAlg::RS256).unwrap().kid, first);

    // Activation: the successor signs; the old key is retired but still published.
    clock.set(T0 + 30 * DAY);
    ring.rotate_if_due().await.unwrap();
    assert_eq!(ring.signer(SigningAlg::RS256).unwrap().kid, next[0]);
    assert_eq!(kid_of(&ring, SigningAlg::RS256, KeyState::Retired), vec![first.clone()]);
    assert!(published(&ring).contains(&first), "retired keys stay published while their tokens live");

    // Retirement: once every token it signed has expired, it leaves the JWKS.
    clock.set(T0 + 30 * DAY + 3599);
    ring.rotate_if_due().await.unwrap();
    assert!(published(&ring).contains(&first));
    clock.set(T0 + 30 * DAY + 3600);
    ring.rotate_if_due().await.unwrap();
    assert!(!published(&ring).contains(&first), "{backend:?}");
    assert_eq!(ring.info().len(), 3);
}

async fn two_nodes_on_one_database_rotate_once(backend: Database) {
    let db = TestDatabase::of(backend).await;
    let clock = Arc::new(ManualClock::new(T0));
    // Both nodes start at once on an empty database: the first keys are created once.
    let (a, b) = tokio::join!(node(db.open().await, &[2; 32], clock.clone()), node(db.open().await, &[2; 32], clock.clone()));
    a.reload().await.unwrap();
    b.reload().await.unwrap();
    assert_eq!(a.info().len(), 3, "{backend:?}: bootstrap duplicated keys");
    assert_eq!(a.signer(SigningAlg::ES256).unwrap().kid, b.signer(SigningAlg::ES256).unwrap().kid);

    clock.set(T0 + 29 * DAY);
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.rotate_if_due(), b.rotate_if_due());
        ra.unwrap();
        rb.unwrap();
    }
    a.reload().await.unwrap();
    b.reload().await.unwrap();
    for alg in SigningAlg::ALL {
        assert_eq!(kid_of(&a, alg, KeyState::Next).len(), 1, "{backend:?} {alg}: rotated more than once");
    }
    assert_eq!(a.info().len(), 6);
    assert_eq!(published(&a), published(&b));

    clock.set(T0 + 31 * DAY);
    let (ra, rb) = tokio::join!(a.rotate_if_due(), b.rotate_if_due());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.signer(SigningAlg::EdDSA).unwrap().kid, b.signer(SigningAlg::EdDSA).unwrap().kid, "nodes agree on the signer");
    let _ = clock.now();
}

async fn a_wrong_key_encryption_key_is_refused() {
    let db = TestDatabase::of(Database::Sqlite).await;
    let clock = Arc::new(ManualClock::new(T0));
    let _first = node(db.open().await, &[3; 32], clock.clone()).await;
    let err = KeyRing::start(db.open().await, Kek::from_bytes(&[4; 32]).unwrap(), clock, schedule(), Box::new(|_| {}))
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("key-encryption key"), "{err}");
}

async fn manual_rotation_publishes_at_once_and_signs_later() {
    let db = TestDatabase::of(Database::Sqlite).await;
    let clock = Arc::new(ManualClock::new(T0));
    let ring = node(db.open().await, &[5; 32], clock.clone()).await;
    let before = ring.current().jwks_etag.clone();
    let signer = ring.signer(SigningAlg::RS256).unwrap().kid.clone();
    ring.rotate_now(false).await.unwrap();
    assert_eq!(ring.info().len(), 6);
    assert_ne!(ring.current().jwks_etag, before);
    assert_eq!(ring.signer(SigningAlg::RS256).unwrap().kid, signer, "not before pre-publication ends");
    ring.rotate_now(false).await.unwrap();
    assert_eq!(ring.info().len(), 6, "one pending successor at a time");
    clock.advance(2 * DAY);
    assert_ne!(ring.signer(SigningAlg::RS256).unwrap().kid, signer);
    // An emergency rotation signs at once.
    clock.advance(60);
    let current = ring.signer(SigningAlg::ES256).unwrap().kid.clone();
    ring.rotate_now(true).await.unwrap();
    assert_ne!(ring.signer(SigningAlg::ES256).unwrap().kid, current);
}
