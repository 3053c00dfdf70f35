//! The factor store on SQLite and PostgreSQL: a TOTP time step is accepted once, also when
//! verifications race; a recovery code is spent once, also when uses race; replacing codes and
//! resetting a user are all or nothing; TOTP secrets are sealed, never stored in clear.

use std::sync::Arc;

use sesame::crypto::kek::Kek;
use sesame::mfa::{self, Mfa};
use sesame::store::{Durable, Factor, FactorKind, User};
use tokio::sync::Barrier;

use crate::store_transactions::sql;
use crate::stores::{audit_event, store_for};
use crate::support::harness::{Database, Tests};

pub fn tests(t: &mut Tests) {
    t.each_database("a_totp_step_is_accepted_once", a_totp_step_is_accepted_once)
        .each_database("racing_verifications_of_one_step_accept_exactly_one", racing_verifications_of_one_step_accept_exactly_one)
        .each_database("a_recovery_code_is_spent_once_even_by_racing_uses", a_recovery_code_is_spent_once_even_by_racing_uses)
        .each_database("factors_are_listed_removed_and_reset_per_user", factors_are_listed_removed_and_reset_per_user)
        .each_database("code_replacement_and_reset_are_all_or_nothing", code_replacement_and_reset_are_all_or_nothing)
        .each_database("totp_secrets_are_not_stored_in_clear", totp_secrets_are_not_stored_in_clear);
}

/// Concurrent callers in the racing tests.
const RACERS: usize = 8;

async fn user(store: &dyn Durable, sub: &str) -> User {
    let user = User { sub: sub.into(), username: format!("user-{sub}"), password_hash: "x".into(), email: None, name: None, disabled: false, created_at: 100 };
    store.insert_user(&user).await.unwrap();
    user
}

fn totp_factor(id: &str, sub: &str, confirmed_at: Option<i64>) -> Factor {
    Factor {
        id: id.into(),
        sub: sub.into(),
        kind: FactorKind::Totp,
        name: "Phone".into(),
        secret_sealed: Some(vec![7; 48]),
        last_step: 0,
        credential: None,
        confirmed_at,
        created_at: 100,
        last_used_at: None,
    }
}

fn hashes(n: u8) -> Vec<Vec<u8>> {
    (1..=n).map(|i| vec![i; 32]).collect()
}

async fn a_totp_step_is_accepted_once(database: Database) {
    let (_db, store) = store_for(database).await;
    user(store.as_ref(), "s1").await;
    store.insert_factor(&totp_factor("f1", "s1", Some(100)), &audit_event("mfa.totp.enrol", "s1")).await.unwrap();

    assert!(store.accept_factor_step("f1", 1_000, 30_000).await.unwrap(), "{database:?}: a fresh step");
    assert!(!store.accept_factor_step("f1", 1_000, 30_001).await.unwrap(), "{database:?}: the same step replayed");
    assert!(!store.accept_factor_step("f1", 999, 30_002).await.unwrap(), "{database:?}: an earlier step after a later one");
    let f = store.factor("f1").await.unwrap().unwrap();
    assert_eq!((f.last_step, f.last_used_at), (1_000, Some(30_000)), "{database:?}: a refused step changes nothing");
    assert!(store.accept_factor_step("f1", 1_001, 30_030).await.unwrap(), "{database:?}: the next step");
    assert!(!store.accept_factor_step("nope", 5_000, 30_030).await.unwrap());

    // Unconfirmed, a factor accepts no code; its confirmation spends the confirming step.
    store.insert_factor(&totp_factor("f2", "s1", None), &audit_event("mfa.totp.enrol", "s1")).await.unwrap();
    assert!(!store.accept_factor_step("f2", 2_000, 60_000).await.unwrap(), "{database:?}: an unconfirmed factor took a code");
    assert!(store.confirm_factor("f2", 2_000, 60_000, &audit_event("mfa.totp.confirm", "s1")).await.unwrap());
    assert!(!store.confirm_factor("f2", 2_001, 60_030, &audit_event("mfa.totp.confirm", "s1")).await.unwrap(), "{database:?}: confirmed twice");
    assert!(!store.accept_factor_step("f2", 2_000, 60_001).await.unwrap(), "{database:?}: the confirming code signed in");
    assert!(store.accept_factor_step("f2", 2_001, 60_030).await.unwrap());
    let f2 = store.factor("f2").await.unwrap().unwrap();
    assert_eq!((f2.confirmed_at, f2.last_step), (Some(60_000), 2_001));
}

async fn racing_verifications_of_one_step_accept_exactly_one(database: Database) {
    let (_db, store) = store_for(database).await;
    user(store.as_ref(), "s1").await;
    store.insert_factor(&totp_factor("f1", "s1", Some(100)), &audit_event("mfa.totp.enrol", "s1")).await.unwrap();
    for step in [1_000, 1_001, 1_002] {
        let barrier = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.accept_factor_step("f1", step, 30 * step + i as i64).await.unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for racer in racers {
            won += racer.await.unwrap() as usize;
        }
        assert_eq!(won, 1, "{database:?}: step {step} was accepted {won} times by {RACERS} racing verifications");
    }
}

async fn a_recovery_code_is_spent_once_even_by_racing_uses(database: Database) {
    let (_db, store) = store_for(database).await;
    user(store.as_ref(), "s1").await;
    user(store.as_ref(), "s2").await;
    store.replace_recovery_codes("s1", &hashes(10), 200, &audit_event("mfa.recovery_codes.generate", "s1")).await.unwrap();
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 10);
    let used = audit_event("mfa.recovery_code.use", "s1");

    assert!(store.use_recovery_code("s1", &[1; 32], 300, &used).await.unwrap());
    assert!(!store.use_recovery_code("s1", &[1; 32], 301, &used).await.unwrap(), "{database:?}: a code was used twice");
    assert!(!store.use_recovery_code("s2", &[2; 32], 301, &used).await.unwrap(), "{database:?}: another user's code");
    assert!(!store.use_recovery_code("s1", &[99; 32], 301, &used).await.unwrap());
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 9);

    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, barrier, used) = (store.clone(), barrier.clone(), used.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.use_recovery_code("s1", &[2; 32], 400, &used).await.unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        won += racer.await.unwrap() as usize;
    }
    assert_eq!(won, 1, "{database:?}: one code, {won} successful uses out of {RACERS} racing");
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 8);
    let uses = store.recent_audit(Some("s1"), 100).await.unwrap().into_iter().filter(|e| e.kind == "mfa.recovery_code.use").count();
    assert_eq!(uses, 2, "{database:?}: one audit event per successful use, none for refusals");

    // Regenerating replaces every code, used or not.
    store.replace_recovery_codes("s1", &[vec![50; 32], vec![51; 32]], 500, &audit_event("mfa.recovery_codes.generate", "s1")).await.unwrap();
    assert!(!store.use_recovery_code("s1", &[3; 32], 501, &used).await.unwrap(), "{database:?}: an old code outlived its replacement");
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 2);
    assert!(store.use_recovery_code("s1", &[50; 32], 502, &used).await.unwrap());
}

async fn factors_are_listed_removed_and_reset_per_user(database: Database) {
    let (_db, store) = store_for(database).await;
    user(store.as_ref(), "s1").await;
    user(store.as_ref(), "s2").await;
    let enrol = |sub: &str| audit_event("mfa.totp.enrol", sub);
    store.insert_factor(&totp_factor("f1", "s1", Some(100)), &enrol("s1")).await.unwrap();
    store.insert_factor(&Factor { created_at: 110, ..totp_factor("f2", "s1", None) }, &enrol("s1")).await.unwrap();
    // A new enrolment of the same kind abandons the earlier unconfirmed one.
    store.insert_factor(&Factor { created_at: 120, ..totp_factor("f3", "s1", None) }, &enrol("s1")).await.unwrap();
    let passkey = Factor { kind: FactorKind::Passkey, secret_sealed: None, credential: Some("{\"id\":\"c1\"}".into()), created_at: 130, ..totp_factor("f4", "s1", Some(130)) };
    store.insert_factor(&passkey, &enrol("s1")).await.unwrap();
    store.insert_factor(&totp_factor("g1", "s2", Some(100)), &enrol("s2")).await.unwrap();

    let ids = |fs: Vec<Factor>| fs.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(ids(store.factors("s1").await.unwrap()), ["f1", "f3", "f4"], "{database:?}");
    assert_eq!(store.factor("f4").await.unwrap(), Some(passkey), "{database:?}: a passkey's credential round-trips");
    assert!(store.insert_factor(&totp_factor("f1", "s1", None), &enrol("s1")).await.is_err(), "{database:?}: a duplicate id");

    assert!(!store.delete_factor("s2", "f1", &audit_event("mfa.remove", "s2")).await.unwrap(), "{database:?}: removed another user's factor");
    assert!(store.delete_factor("s1", "f1", &audit_event("mfa.remove", "s1")).await.unwrap());
    assert!(!store.delete_factor("s1", "f1", &audit_event("mfa.remove", "s1")).await.unwrap());
    assert_eq!(ids(store.factors("s1").await.unwrap()), ["f3", "f4"]);

    store.replace_recovery_codes("s1", &hashes(10), 200, &audit_event("mfa.recovery_codes.generate", "s1")).await.unwrap();
    store.replace_recovery_codes("s2", &hashes(3), 200, &audit_event("mfa.recovery_codes.generate", "s2")).await.unwrap();
    assert_eq!(store.delete_all_factors("s1", &audit_event("mfa.reset", "s1")).await.unwrap(), (2, 10), "{database:?}");
    assert!(store.factors("s1").await.unwrap().is_empty());
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 0);
    assert_eq!(ids(store.factors("s2").await.unwrap()), ["g1"], "{database:?}: a reset reached another user");
    assert_eq!(store.recovery_codes_left("s2").await.unwrap(), 3);
    let kinds: Vec<String> = store.recent_audit(Some("s1"), 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "mfa.remove").count(), 1, "{database:?}: refused removals are not recorded: {kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("mfa.reset"));
}

async fn code_replacement_and_reset_are_all_or_nothing(database: Database) {
    let (db, store) = store_for(database).await;
    user(store.as_ref(), "s1").await;
    store.insert_factor(&totp_factor("f1", "s1", Some(100)), &audit_event("mfa.totp.enrol", "s1")).await.unwrap();
    store.replace_recovery_codes("s1", &hashes(10), 200, &audit_event("mfa.recovery_codes.generate", "s1")).await.unwrap();

    // A duplicate among the new hashes fails the last insert: the old codes are not deleted.
    let mut dup = hashes(3);
    dup.push(vec![1; 32]);
    assert!(store.replace_recovery_codes("s1", &dup, 300, &audit_event("mfa.recovery_codes.generate", "s1")).await.is_err());
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 10, "{database:?}: a failed replacement removed the old codes");

    // With the audit table gone, the audit insert (each write's last statement) fails: so does the write.
    sql(&db, "ALTER TABLE audit_events RENAME TO audit_events_away").await;
    assert!(store.replace_recovery_codes("s1", &[vec![60; 32]], 300, &audit_event("mfa.recovery_codes.generate", "s1")).await.is_err());
    assert!(store.delete_all_factors("s1", &audit_event("mfa.reset", "s1")).await.is_err());
    assert!(store.use_recovery_code("s1", &[1; 32], 300, &audit_event("mfa.recovery_code.use", "s1")).await.is_err());
    assert!(store.insert_factor(&totp_factor("f2", "s1", None), &audit_event("mfa.totp.enrol", "s1")).await.is_err());
    assert_eq!(store.recovery_codes_left("s1").await.unwrap(), 10, "{database:?}: codes changed without their audit event");
    assert_eq!(store.factors("s1").await.unwrap().len(), 1, "{database:?}: factors changed without their audit event");

    sql(&db, "ALTER TABLE audit_events_away RENAME TO audit_events").await;
    assert_eq!(store.delete_all_factors("s1", &audit_event("mfa.reset", "s1")).await.unwrap(), (1, 10));
}

async fn totp_secrets_are_not_stored_in_clear(database: Database) {
    let (db, store) = store_for(database).await;
    let alice = user(store.as_ref(), "s1").await;
    let kek = Kek::from_bytes(&[5; 32]).unwrap();
    let mfa = Mfa { durable: store.as_ref(), kek: &kek, issuer: "https://id.example.com" };
    let (added, codes) = mfa.provision_totp(&alice, Some("Phone"), "test", 1_000).await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(&added.secret).unwrap().as_bytes().to_vec();
    assert_eq!(secret.len(), 20);

    // Every column of the row, read back beside the store.
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let row = sqlx::query("SELECT id, sub, kind, name, secret_sealed, credential FROM user_factors").fetch_one(&mut conn).await.unwrap();
    let sealed: Vec<u8> = row.try_get("secret_sealed").unwrap();
    let mut stored: Vec<u8> = sealed.clone();
    for column in ["id", "sub", "kind", "name"] {
        stored.extend(row.try_get::<String, _>(column).unwrap().into_bytes());
    }
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()), "{database:?}: the secret is stored in clear");
    assert!(!stored.windows(8).any(|w| secret.windows(8).any(|s| s == w)), "{database:?}: part of the secret is stored in clear");
    assert!(!String::from_utf8_lossy(&stored).contains(&added.secret[..16]), "{database:?}: the base32 secret is stored");
    assert_eq!(sealed.len(), 12 + secret.len() + 16, "nonce, ciphertext, tag");
    assert_eq!(kek.open(&format!("totp:{}", added.factor_id), &sealed).unwrap(), secret, "sealed under the KEK, bound to the factor");
    let hashes: Vec<Vec<u8>> = sqlx::query("SELECT code_hash FROM recovery_codes").fetch_all(&mut conn).await.unwrap().iter().map(|r| r.try_get("code_hash").unwrap()).collect();
    let codes = codes.expect("a first factor brings recovery codes");
    assert_eq!((hashes.len(), codes.len()), (10, 10));
    for code in &codes {
        let plain = code.replace('-', "");
        let clear = |h: &Vec<u8>| h.windows(8).any(|w| plain.as_bytes().windows(8).any(|p| p == w));
        assert!(!hashes.iter().any(clear), "{database:?}: recovery code {code} stored in clear");
    }
    conn.close().await.unwrap();

    // Under another KEK the secret does not open: verification fails loudly, not as a wrong code.
    let other = Kek::from_bytes(&[6; 32]).unwrap();
    let elsewhere = Mfa { kek: &other, ..mfa };
    let ephemeral = sesame::store::ephemeral::MemoryStore::new();
    let limits = sesame::config::LoginConfig::default();
    let throttle = mfa::Throttle { ephemeral: &ephemeral, limits: &limits };
    let code = sesame::mfa::totp::code_at(&secret, 1_000).unwrap();
    let err = elsewhere.verify_second_factor(&throttle, "s1", &code, None, 1_000).await.unwrap_err();
    assert!(matches!(err, mfa::MfaError::Internal(ref m) if m.contains("key-encryption key")), "{err:?}");
    assert_eq!(mfa.verify_second_factor(&throttle, "s1", &code, None, 1_000).await.unwrap(), mfa::Method::Otp);
}
