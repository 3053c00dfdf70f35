//! The refresh_token grant: rotation, reuse detection revoking the family, the retry grace
//! window, scope narrowing, and binding to the client. The server's clock is a `ManualClock`:
//! "later than the grace window" is a step of the clock, not a sleep.

use std::sync::Arc;
use std::time::Duration;

use oauth2::{RefreshToken, TokenResponse};
use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, ManualClock, SystemClock};

use crate::support::harness::Tests;
use crate::support::machine::error_code;
use crate::support::sso::TestClient;
use crate::support::tokens::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("rotation_with_the_oauth2_crate_and_reuse_revoking_the_family", rotation_with_the_oauth2_crate_and_reuse_revoking_the_family)
        .each_backend("a_quick_retry_is_not_reuse_and_scope_only_narrows", a_quick_retry_is_not_reuse_and_scope_only_narrows)
        .each_backend("concurrent_refreshes_each_get_a_pair_the_family_revokes", concurrent_refreshes_each_get_a_pair_the_family_revokes)
        .test("refresh_tokens_are_bound_to_their_client", refresh_tokens_are_bound_to_their_client);
}

/// A clock at real time (JWT expiry is checked against real time), moved only by the test.
fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now()))
}

async fn rotation_with_the_oauth2_crate_and_reuse_revoking_the_family(backend: Backend) {
    let clock = manual_clock();
    let server = TestServer::start_with_clock(backend, clock.clone(), |c| c.tokens.refresh_reuse_grace = Duration::ZERO).await;
    let s = signed_in_with_refresh(&server).await;
    let client = oauth2_client(&server, &s.app.id, s.app.secret.as_ref().unwrap());
    let rotated = client.exchange_refresh_token(&RefreshToken::new(s.refresh.clone())).request_async(&plain()).await.unwrap();
    let second_refresh = rotated.refresh_token().unwrap().secret().clone();
    assert_ne!(second_refresh, s.refresh, "rotated");
    let second_access = rotated.access_token().secret().clone();
    assert_eq!(introspect(&server, &s.app, &second_refresh).await["active"], true);
    assert_eq!(introspect(&server, &s.app, &s.refresh).await, serde_json::json!({"active": false}), "the old token died");

    // One second later is past a zero grace window: the old token coming back is reuse.
    clock.advance(1);
    assert_eq!(error_code(refresh(&server, &s.app, &s.refresh, None).await).await, (400, "invalid_grant".into()), "{backend:?}: reuse");
    // The whole family is revoked: the newest refresh token and the family's access tokens.
    assert_eq!(introspect(&server, &s.app, &second_refresh).await["active"], false, "{backend:?}");
    assert_eq!(introspect(&server, &s.app, &second_access).await["active"], false);
    assert_eq!(introspect(&server, &s.app, &s.access).await["active"], false);
    assert_eq!(error_code(refresh(&server, &s.app, &second_refresh, None).await).await.1, "invalid_grant");
}

async fn a_quick_retry_is_not_reuse_and_scope_only_narrows(backend: Backend) {
    let clock = manual_clock();
    let server = TestServer::start_with_clock(backend, clock.clone(), |c| c.tokens.refresh_reuse_grace = Duration::from_secs(5)).await;
    let s = signed_in_with_refresh(&server).await;
    let first: Value = refresh(&server, &s.app, &s.refresh, None).await.json().await.unwrap();
    // A retry at the very end of the grace window.
    clock.advance(5);
    let retry = refresh(&server, &s.app, &s.refresh, None).await;
    assert_eq!(retry.status(), 200, "{backend:?}: a retry within the grace window");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(introspect(&server, &s.app, first["refresh_token"].as_str().unwrap()).await["active"], true, "nothing revoked");
    let current = retry["refresh_token"].as_str().unwrap();

    let res = refresh(&server, &s.app, current, Some("openid profile email")).await;
    assert_eq!(error_code(res).await.1, "invalid_scope", "widening");
    // The refused request did not consume the token.
    let fresh: Value = refresh(&server, &s.app, current, Some("openid")).await.json().await.unwrap();
    assert_eq!(fresh["scope"], "openid", "{backend:?}: narrowing");

    // One second past the grace window, the original token is reuse after all.
    clock.advance(1);
    assert_eq!(error_code(refresh(&server, &s.app, &s.refresh, None).await).await.1, "invalid_grant");
    assert_eq!(introspect(&server, &s.app, fresh["refresh_token"].as_str().unwrap()).await["active"], false, "{backend:?}: the family survived reuse");
}

/// Requests racing with one token: one rotates it, the others lose the compare-and-set (or read
/// it used) and are grace retries. Each gets its own pair, and each pair was stored whole: a
/// later reuse revokes every one of their refresh and access tokens.
async fn concurrent_refreshes_each_get_a_pair_the_family_revokes(backend: Backend) {
    let clock = manual_clock();
    let server = TestServer::start_with_clock(backend, clock.clone(), |c| c.tokens.refresh_reuse_grace = Duration::from_secs(5)).await;
    let s = signed_in_with_refresh(&server).await;
    let answers = futures_util::future::join_all((0..6).map(|_| refresh(&server, &s.app, &s.refresh, None))).await;
    let mut pairs = Vec::new();
    for res in answers {
        assert_eq!(res.status(), 200, "{backend:?}: a racing refresh within the grace window");
        let body: Value = res.json().await.unwrap();
        pairs.push((body["refresh_token"].as_str().unwrap().to_string(), body["access_token"].as_str().unwrap().to_string()));
    }
    let mut successors: Vec<&String> = pairs.iter().map(|(r, _)| r).collect();
    successors.sort();
    successors.dedup();
    assert_eq!(successors.len(), 6, "{backend:?}: each request its own successor");
    for (next, access) in &pairs {
        assert_eq!(introspect(&server, &s.app, next).await["active"], true, "{backend:?}");
        assert_eq!(introspect(&server, &s.app, access).await["active"], true, "{backend:?}");
    }

    clock.advance(6);
    assert_eq!(error_code(refresh(&server, &s.app, &s.refresh, None).await).await.1, "invalid_grant", "{backend:?}: reuse");
    for (next, access) in &pairs {
        assert_eq!(introspect(&server, &s.app, next).await["active"], false, "{backend:?}: a successor outlived its family");
        assert_eq!(introspect(&server, &s.app, access).await["active"], false, "{backend:?}: an access token's jti was not recorded with its successor");
    }
}

async fn refresh_tokens_are_bound_to_their_client() {
    let server = TestServer::start(Backend::Embedded).await;
    let s = signed_in_with_refresh(&server).await;
    let mut spec = NewClient::new("Other");
    spec.redirect_uris = vec!["http://127.0.0.1:9/o".into()];
    let other = clients::add(server.state.durable.as_ref(), &spec, "test", 0).await.unwrap();
    let other = TestClient { id: other.client.id, secret: other.client_secret, redirect_uri: String::new() };
    assert_eq!(error_code(refresh(&server, &other, &s.refresh, None).await).await.1, "invalid_grant");
    assert_eq!(introspect(&server, &other, &s.refresh).await, serde_json::json!({"active": false}), "described only to its holder");
    assert_eq!(refresh(&server, &s.app, &s.refresh, None).await.status(), 200, "still usable by its own client");
}
