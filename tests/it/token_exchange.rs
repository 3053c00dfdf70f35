//! The token exchange grant (RFC 8693) for API keys: a short-lived JWT that verifies with the
//! JWKS, network binding through trusted proxies, and the per-key rate limit.

use std::sync::Arc;

use serde_json::Value;
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::admin::api_keys::NewApiKey;

use crate::support::api_keys::{admin, exchange, spec, API_KEY_TOKEN_TYPE, EXCHANGE};
use crate::support::harness::Tests;
use crate::support::machine::error_code;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("exchange_for_a_jwt_that_verifies_with_the_jwks", exchange_for_a_jwt_that_verifies_with_the_jwks)
        .test("exchange_enforces_networks_through_trusted_proxies_and_rate_limits", exchange_enforces_networks_through_trusted_proxies_and_rate_limits);
}

async fn exchange_for_a_jwt_that_verifies_with_the_jwks(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.api_keys.exchange_audiences = vec!["https://reports.example.com/".into()]).await;
    let issued = admin(&server).generate(&spec("batch", "reports:read reports:write")).await.unwrap();
    let res = exchange(&server, &issued.key, &[("scope", "reports:read"), ("resource", "https://reports.example.com/")]).await;
    assert_eq!(res.status(), 200, "{backend:?}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    let token = body["access_token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = http().get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["https://reports.example.com/"]);
    validation.set_issuer(&[&server.base]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], issued.id.as_str());
    assert_eq!(claims["scope"], "reports:read");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300, "short-lived");

    assert_eq!(error_code(exchange(&server, &issued.key, &[("scope", "admin")]).await).await.1, "invalid_scope");
    assert_eq!(error_code(exchange(&server, "ses_prod_nope_000000", &[]).await).await.1, "invalid_grant");
    let res = http().post(server.url("/token")).form(&[("grant_type", EXCHANGE), ("subject_token", issued.key.as_str()), ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")]).send().await.unwrap();
    assert_eq!(error_code(res).await.1, "invalid_request");
}

async fn exchange_enforces_networks_through_trusted_proxies_and_rate_limits() {
    // Rate limits count per clock minute: a ManualClock 10 s into a minute keeps the requests in
    // one minute however slow the machine, and says exactly when the next one starts.
    let start = SystemClock.now() / 60 * 60 + 10;
    let clock = Arc::new(ManualClock::new(start));
    let server = TestServer::start_with_clock(Backend::Embedded, clock.clone(), |c| c.trusted_proxies = sesame::config::TrustedProxies::parse(&["127.0.0.1/32"]).unwrap()).await;
    let bound = admin(&server).generate(&NewApiKey { cidrs: vec!["10.0.0.0/8".into()], rate_limit_per_minute: Some(2), ..spec("bound", "a") }).await.unwrap();
    assert_eq!(error_code(exchange(&server, &bound.key, &[]).await).await.1, "invalid_grant", "127.0.0.1 is outside 10/8");
    let from = |ip: &'static str| {
        let form = [("grant_type", EXCHANGE), ("subject_token", bound.key.as_str()), ("subject_token_type", API_KEY_TOKEN_TYPE)];
        http().post(server.url("/token")).header("x-forwarded-for", ip).form(&form).send()
    };
    assert_eq!(from("10.9.8.7").await.unwrap().status(), 200, "behind a trusted proxy");
    assert_eq!(from("10.9.8.7").await.unwrap().status(), 200);
    let limited = from("10.9.8.7").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 50, "the rest of the minute");
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));
    // The next minute allows two more.
    clock.advance(50);
    assert_eq!(from("10.9.8.7").await.unwrap().status(), 200, "a new minute");

    let events = server.state.durable.recent_audit(Some(&bound.id), 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "api_key.suspicious" && e.reason.as_deref() == Some("rate limit exceeded")));
    assert!(events.iter().any(|e| e.kind == "api_key.refused" && e.reason.as_deref() == Some("address not allowed")));
    assert!(events.iter().all(|e| e.result != "ok" || e.kind == "api_key.generate"), "a successful check is counted, not audited: {events:?}");
    let stored = server.state.durable.api_key(&bound.id).await.unwrap().unwrap();
    assert_eq!(stored.last_used_from.as_deref(), Some("10.9.8.7"), "the last use is recorded (at most once a minute)");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&bound.key), "key material in the audit log");
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sesame_security_events_total{event=\"api_key_suspicious\"}"));
}
