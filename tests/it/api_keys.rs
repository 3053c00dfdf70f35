//! API key verification: the checksum before any lookup, expiry and rotation grace on an
//! injected clock, and a new caller address flagged in the audit log. (The token exchange, the
//! admin API and introspection of keys have files of their own.)

use std::sync::Arc;
use std::time::Duration;

use sesame::admin::api_keys::{Admin, NewApiKey};
use sesame::api_keys::{self, Rejection};
use sesame::clock::{Clock, ManualClock};
use sesame::crypto::secrets::hash_secret;

use crate::support::api_keys::{admin, spec};
use crate::support::harness::Tests;
use crate::support::{test_config, Backend, TestDatabase, TestServer};

pub fn tests(t: &mut Tests) {
    t.test("a_bad_checksum_is_refused_without_a_lookup", a_bad_checksum_is_refused_without_a_lookup)
        .each_backend("expiry_and_rotation_grace_follow_the_clock", expiry_and_rotation_grace_follow_the_clock)
        .test("a_new_address_is_suspicious", a_new_address_is_suspicious);
}

async fn a_bad_checksum_is_refused_without_a_lookup() {
    let server = TestServer::start(Backend::Embedded).await;
    let issued = admin(&server).generate(&spec("svc", "a")).await.unwrap();
    let mut typo = issued.key.clone().into_bytes();
    typo[15] = if typo[15] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(api_keys::verify(&server.state, &typo, None).await.unwrap().unwrap_err(), Rejection::Malformed);
    assert!(server.state.api_key_cache.get(&hash_secret(&typo)).is_none(), "the store was consulted for a malformed key");
    // A well-formed key that does not exist is looked up (and the miss cached).
    let stranger = sesame::api_keys::format::generate("prod");
    assert_eq!(api_keys::verify(&server.state, &stranger, None).await.unwrap().unwrap_err(), Rejection::Unknown);
    assert_eq!(server.state.api_key_cache.get(&hash_secret(&stranger)), Some(None));
    assert!(api_keys::verify(&server.state, &issued.key, None).await.unwrap().is_ok());
}

async fn expiry_and_rotation_grace_follow_the_clock(backend: Backend) {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let db = TestDatabase::new(backend).await;
    let mut config = test_config(backend);
    config.database_url = db.url.clone();
    config.api_keys.cache_ttl = Duration::ZERO;
    let server = TestServer::start_on(config, clock.clone(), Some(db)).await;
    let ops = |now| Admin { now, ..admin(&server) };

    let short = ops(clock.now()).generate(&NewApiKey { expires_in: Some(Duration::from_secs(3600)), ..spec("short", "a") }).await.unwrap();
    assert!(api_keys::verify(&server.state, &short.key, None).await.unwrap().is_ok());
    let too_long = ops(clock.now()).generate(&NewApiKey { expires_in: Some(Duration::from_secs(100 * 86_400)), ..spec("long", "a") }).await;
    let err = too_long.expect_err("prod keys live at most 90 days").to_string();
    assert!(err.contains("expires-in must be between") && err.contains("for prod keys"), "{err}");

    let old = ops(clock.now()).generate(&spec("rotating", "a")).await.unwrap();
    let new = ops(clock.now()).rotate(&old.id, Duration::from_secs(7 * 86_400)).await.unwrap();
    clock.advance(3 * 86_400);
    assert!(api_keys::verify(&server.state, &old.key, None).await.unwrap().is_ok(), "{backend:?}: old key within grace");
    assert!(api_keys::verify(&server.state, &new.key, None).await.unwrap().is_ok());
    assert_eq!(api_keys::verify(&server.state, &short.key, None).await.unwrap().unwrap_err(), Rejection::Expired);
    clock.advance(5 * 86_400);
    assert_eq!(api_keys::verify(&server.state, &old.key, None).await.unwrap().unwrap_err(), Rejection::Superseded, "{backend:?}");
    assert!(api_keys::verify(&server.state, &new.key, None).await.unwrap().is_ok());
    let err = ops(clock.now()).rotate(&old.id, Duration::ZERO).await.expect_err("a rotated key cannot be rotated again").to_string();
    assert!(err.contains("only an active key can be rotated"), "{err}");
}

async fn a_new_address_is_suspicious() {
    let server = TestServer::start(Backend::Embedded).await;
    let k = admin(&server).generate(&spec("svc", "a")).await.unwrap();
    for ip in ["10.0.0.1", "10.0.0.1"] {
        assert!(api_keys::verify(&server.state, &k.key, Some(ip.parse().unwrap())).await.unwrap().is_ok());
    }
    let count = |events: &[sesame::store::AuditEvent]| events.iter().filter(|e| e.kind == "api_key.suspicious").count();
    assert_eq!(count(&server.state.durable.recent_audit(Some(&k.id), 100).await.unwrap()), 0);
    assert!(api_keys::verify(&server.state, &k.key, Some("10.0.0.2".parse().unwrap())).await.unwrap().is_ok());
    let events = server.state.durable.recent_audit(Some(&k.id), 100).await.unwrap();
    assert_eq!(count(&events), 1, "{events:?}");
}
