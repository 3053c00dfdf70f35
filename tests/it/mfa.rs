//! The second-factor operations on a running server's state (`sesame::mfa`), on SQLite with the
//! in-process store and on PostgreSQL with Redis: enrolment and confirmation, codes computed by
//! totp-rs from the printed otpauth:// URI, each code accepted once (also when verifications
//! race), recovery codes, audit, and throttling like passwords.

use std::sync::Arc;
use std::time::Duration;

use sesame::admin::users::{self, NewUser};
use sesame::clock::{Clock, SystemClock};
use sesame::mfa::{self, Method, Mfa, MfaError, Throttle};
use sesame::state::AppState;
use sesame::store::User;
use tokio::sync::Barrier;

use crate::support::harness::Tests;
use crate::support::{eventually, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("totp_and_recovery_codes_verify_once", totp_and_recovery_codes_verify_once)
        .each_backend("wrong_codes_are_throttled_per_account", wrong_codes_are_throttled_per_account);
}

pub(crate) async fn add_user(state: &AppState, username: &str) -> User {
    let new = NewUser { username, password: "correct horse battery", email: None, name: None };
    users::add(state.durable.as_ref(), &state.passwords, new, state.now()).await.unwrap()
}

/// The authenticator app: totp-rs reading the URI sesame printed, not sesame's own code.
pub(crate) fn app_code(otpauth_uri: &str, at: i64) -> String {
    totp_rs::Totp::from_url(otpauth_uri).expect("a valid otpauth URI").generate(at as u64).to_string()
}

/// A six-digit code that is not `right`.
fn wrong(right: &str) -> String {
    let n: u32 = right.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn verify(state: &AppState, sub: &str, code: &str, now: i64) -> Result<Method, MfaError> {
    Mfa::of(state).verify_second_factor(&Throttle::of(state), sub, code, Some("192.0.2.1"), now).await
}

async fn audit_kinds(state: &AppState, sub: &str) -> Vec<(String, Option<String>)> {
    state.durable.recent_audit(Some(sub), 1_000).await.unwrap().into_iter().map(|e| (e.kind, e.reason)).collect()
}

async fn totp_and_recovery_codes_verify_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let state = &server.state;
    let alice = add_user(state, "alice").await;
    let now = SystemClock.now();

    let enrolment = Mfa::of(state).enrol_totp(&alice, Some("Phone"), "self", now).await.unwrap();
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/127.0.0.1:alice?secret="), "{}", enrolment.otpauth_uri);
    assert!(enrolment.otpauth_uri.ends_with("&issuer=127.0.0.1"), "{}", enrolment.otpauth_uri);
    assert!(enrolment.otpauth_uri.contains(&enrolment.secret));
    assert!(enrolment.qr_svg.starts_with("<svg ") && enrolment.qr_svg.ends_with("</svg>"));

    // Unconfirmed, the app's code is no second factor.
    let first = app_code(&enrolment.otpauth_uri, now);
    assert!(matches!(verify(state, &alice.sub, &first, now).await, Err(MfaError::WrongCode)), "{backend:?}");
    assert!(matches!(Mfa::of(state).confirm_totp(&alice.sub, &enrolment.factor_id, &wrong(&first), "self", now).await, Err(MfaError::WrongCode)));
    let codes = Mfa::of(state).confirm_totp(&alice.sub, &enrolment.factor_id, &first, "self", now).await.unwrap().expect("recovery codes with the first factor");
    assert_eq!(codes.len(), 10);
    assert!(Mfa::of(state).confirm_totp(&alice.sub, &enrolment.factor_id, &first, "self", now).await.is_err(), "confirmed twice");

    // The confirming code is spent; the next step's code works once.
    assert!(matches!(verify(state, &alice.sub, &first, now).await, Err(MfaError::WrongCode)), "{backend:?}: the confirming code signed in");
    let next = app_code(&enrolment.otpauth_uri, now + 30);
    assert_eq!(verify(state, &alice.sub, &next, now + 30).await.unwrap(), Method::Otp);
    assert!(matches!(verify(state, &alice.sub, &next, now + 31).await, Err(MfaError::WrongCode)), "{backend:?}: a code replayed in its window");

    // Four sign-ins racing with one code: one wins.
    let raced = app_code(&enrolment.otpauth_uri, now + 60);
    let barrier = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (state, barrier, sub, code) = (state.clone(), barrier.clone(), alice.sub.clone(), raced.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                verify(&state, &sub, &code, now + 60).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Ok(Method::Otp))).count(), 1, "{backend:?}: {outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Method::Otp) | Err(MfaError::WrongCode))), "{outcomes:?}");

    // A recovery code, as typed by a person, works once.
    let typed = codes[3].to_lowercase().replace('-', " ");
    assert_eq!(verify(state, &alice.sub, &typed, now + 90).await.unwrap(), Method::Recovery);
    assert!(matches!(verify(state, &alice.sub, &codes[3], now + 90).await, Err(MfaError::WrongCode)), "{backend:?}: a recovery code used twice");
    let list = mfa::list_factors(state.durable.as_ref(), &alice.sub).await.unwrap();
    assert_eq!(list.recovery_codes_left, 9);
    assert_eq!(list.factors.len(), 1);
    assert!(list.factors[0].confirmed && list.factors[0].last_used_at == Some(now + 60), "{list:?}");

    // Audited, never with a secret or a code.
    let kinds = audit_kinds(state, &alice.sub).await;
    for expected in ["mfa.totp.enrol", "mfa.totp.confirm", "mfa.recovery_codes.generate", "mfa.recovery_code.use", "mfa.failure"] {
        assert!(kinds.iter().any(|(k, _)| k == expected), "{backend:?}: no {expected} in {kinds:?}");
    }
    assert!(kinds.contains(&("mfa.failure".into(), Some("replayed".into()))), "{kinds:?}");
    let events = serde_json::to_string(&state.durable.recent_audit(Some(&alice.sub), 1_000).await.unwrap()).unwrap();
    for secret in [enrolment.secret.as_str(), codes[3].as_str(), &codes[3].replace('-', ""), codes[0].as_str()] {
        assert!(!events.contains(secret), "{backend:?}: the audit holds {secret}");
    }

    // Removal: only by the owner; then the app's codes are no factor.
    let bob = add_user(state, "bob").await;
    assert!(matches!(mfa::remove_factor(state.durable.as_ref(), &bob.sub, &enrolment.factor_id, "bob", now).await, Err(MfaError::NotFound(_))));
    mfa::remove_factor(state.durable.as_ref(), &alice.sub, &enrolment.factor_id, "self", now).await.unwrap();
    let later = app_code(&enrolment.otpauth_uri, now + 120);
    assert!(matches!(verify(state, &alice.sub, &later, now + 120).await, Err(MfaError::WrongCode)));
    assert!(audit_kinds(state, &alice.sub).await.iter().any(|(k, _)| k == "mfa.remove"));
}

async fn wrong_codes_are_throttled_per_account(backend: Backend) {
    let max = 5;
    // Long enough for the attempts below to fall in one window on a loaded machine.
    let window = Duration::from_secs(5);
    let server = TestServer::start_with(backend, |c| {
        c.login.max_failures_per_account = max;
        c.login.failure_window = window;
    })
    .await;
    let state = &server.state;
    let (alice, bob) = (add_user(state, "alice").await, add_user(state, "bob").await);
    let now = SystemClock.now();
    let (added, codes) = Mfa::of(state).provision_totp(&alice, None, "cli", now).await.unwrap();
    let codes = codes.unwrap();
    let (bob_added, _) = Mfa::of(state).provision_totp(&bob, None, "cli", now).await.unwrap();

    let right = app_code(&added.otpauth_uri, now);
    for i in 0..max {
        let guess = if i % 2 == 0 { wrong(&right) } else { "ZZZZ-ZZZZ-ZZZZ-ZZZZ".to_string() };
        assert!(matches!(verify(state, &alice.sub, &guess, now).await, Err(MfaError::WrongCode)), "{backend:?}: guess {i}");
    }
    // Past the limit the right code, and a valid recovery code, are refused unchecked: nothing is spent.
    assert!(matches!(verify(state, &alice.sub, &right, now).await, Err(MfaError::Throttled)), "{backend:?}");
    assert!(matches!(verify(state, &alice.sub, &codes[0], now).await, Err(MfaError::Throttled)), "{backend:?}");
    assert_eq!(mfa::list_factors(state.durable.as_ref(), &alice.sub).await.unwrap().recovery_codes_left, 10, "{backend:?}: spent while throttled");
    // Another account is not held back.
    assert_eq!(verify(state, &bob.sub, &app_code(&bob_added.otpauth_uri, now), now).await.unwrap(), Method::Otp);

    let kinds = audit_kinds(state, &alice.sub).await;
    assert_eq!(kinds.iter().filter(|(k, _)| k == "mfa.failure").count(), max as usize, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|(k, _)| k == "mfa.throttled").count(), 1, "{backend:?}: the throttle is audited once per window: {kinds:?}");

    // After the window, the right code (its step never spent) works, and clears the counter.
    let (sub, code) = (&alice.sub, &right);
    let accepted = eventually(Duration::from_secs(15), "the throttle window to pass", || async move {
        match verify(state, sub, code, now).await {
            Err(MfaError::Throttled) => None,
            other => Some(other),
        }
    })
    .await;
    assert_eq!(accepted.unwrap(), Method::Otp, "{backend:?}");
    for i in 0..max {
        assert!(matches!(verify(state, &alice.sub, &wrong(&right), now).await, Err(MfaError::WrongCode)), "{backend:?}: a success gave the places back ({i})");
    }
    assert!(matches!(verify(state, &alice.sub, &codes[1], now).await, Err(MfaError::Throttled)));
}
