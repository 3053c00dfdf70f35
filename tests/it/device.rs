//! The device authorization grant (RFC 8628) over HTTP: the device authorization endpoint, the
//! verification page with sign-in, second factor and consent, and the token endpoint's polling
//! answers (`authorization_pending`, `slow_down`, `expired_token`, `access_denied`), on both
//! backends. The server's clock is a `ManualClock` where time matters.

use std::sync::Arc;

use serde_json::Value;
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::mfa::{totp, Mfa};
use sesame::session::{EndReason, SessionEnder};

use crate::support::device::*;
use crate::support::harness::Tests;
use crate::support::sso::{absolute, add_client, add_user, enter_code, hidden, id_claims, location, Browser, TestClient};
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_device_polls_until_the_user_approves_then_redeems_once", a_device_polls_until_the_user_approves_then_redeems_once)
        .each_backend("a_denied_device_gets_access_denied", a_denied_device_gets_access_denied)
        .each_backend("an_unanswered_device_code_expires", an_unanswered_device_code_expires)
        .each_backend("wrong_user_codes_are_throttled_per_address", wrong_user_codes_are_throttled_per_address)
        .each_backend("a_client_that_requires_mfa_gets_the_second_factor_before_approval", a_client_that_requires_mfa_gets_the_second_factor_before_approval)
        .test("a_device_code_serves_only_its_own_client", a_device_code_serves_only_its_own_client)
        .test("only_clients_registered_for_the_grant_start_it", only_clients_registered_for_the_grant_start_it)
        .test("the_link_with_the_code_fills_the_form_but_the_user_submits_it", the_link_with_the_code_fills_the_form_but_the_user_submits_it)
        .test("a_first_party_device_client_is_still_approved_explicitly", a_first_party_device_client_is_still_approved_explicitly)
        .test("ending_the_session_before_the_poll_yields_nothing", ending_the_session_before_the_poll_yields_nothing)
        .each_backend("a_device_polling_with_a_dpop_key_gets_tokens_bound_to_it", a_device_polling_with_a_dpop_key_gets_tokens_bound_to_it);
}

async fn with_clock(backend: Backend) -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with_clock(backend, clock.clone(), |_| {}).await;
    (server, clock)
}

fn code_of(started: &Value) -> (String, String) {
    (started["device_code"].as_str().unwrap().to_string(), started["user_code"].as_str().unwrap().to_string())
}

async fn a_device_polls_until_the_user_approves_then_redeems_once(backend: Backend) {
    let (server, clock) = with_clock(backend).await;
    let sub = add_user(&server, "alice").await;
    let tool = add_device_client(&server, "Deploy CLI", ClientOptions::default()).await;
    let started = start(&server, &tool, "openid profile email offline_access").await;
    let (device_code, user_code) = code_of(&started);
    assert_eq!(user_code.len(), 9, "XXXX-XXXX: {started}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code.chars().filter(|c| *c != '-').all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)), "{user_code}");
    assert_eq!(started["verification_uri"], server.url("/device"));
    assert_eq!(started["verification_uri_complete"], format!("{}?user_code={user_code}", server.url("/device")));
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);

    poll_expecting(&server, &tool, &device_code, "authorization_pending").await;
    // Again at once: too fast; the interval is now 10 s for this device code...
    poll_expecting(&server, &tool, &device_code, "slow_down").await;
    // ...so 6 s later is too fast again, and the interval grows to 15 s.
    clock.advance(6);
    poll_expecting(&server, &tool, &device_code, "slow_down").await;
    clock.advance(14);
    poll_expecting(&server, &tool, &device_code, "slow_down").await;
    clock.advance(20);
    poll_expecting(&server, &tool, &device_code, "authorization_pending").await;

    // The user types the code in lower case without the hyphen, signs in and allows.
    let browser = Browser::new();
    let (consent, done) = answer(&browser, &server, &user_code.replace('-', "").to_lowercase(), "alice", "allow").await;
    assert!(consent.contains("Deploy CLI") && consent.contains(&user_code), "the consent page names the client and repeats the code: {consent}");
    assert!(done.contains("Device connected") && done.contains("Deploy CLI"), "{done}");

    clock.advance(20);
    let (status, tokens) = poll(&server, &tool, &device_code).await;
    assert_eq!(status, 200, "{backend:?}: {tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email offline_access");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let claims = id_claims(&tokens);
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["aud"], tool.id.as_str());
    assert!(claims["sid"].is_string() && claims.get("nonce").is_none(), "{claims}");
    let info: Value = http().get(server.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["email"], "alice@example.com");

    // Once only, however long the device waits.
    clock.advance(20);
    let (status, again) = poll(&server, &tool, &device_code).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "{again}");

    // The session knows the device's client (ending it revokes what the device holds), the
    // audit log has the approval, and the metrics count the grant.
    let sessions = server.state.durable.live_sso_sessions(Some(&sub), clock.now()).await.unwrap();
    assert!(sessions.iter().any(|s| s.clients.contains(&tool.id)), "{sessions:?}");
    let events = server.state.durable.recent_audit(Some(&sub), 20).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "device.authorization" && e.result == "ok" && e.details["client_id"] == tool.id.as_str()), "{events:?}");
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "sesame_tokens_issued_total{grant=\"device_code\"} 1"), "{metrics}");
    server.stop().await;
}

async fn a_denied_device_gets_access_denied(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sub = add_user(&server, "alice").await;
    let tool = add_device_client(&server, "Printer", ClientOptions { public: false, ..ClientOptions::default() }).await;
    assert!(tool.secret.is_some(), "a confidential device client");
    let (device_code, user_code) = code_of(&start(&server, &tool, "openid").await);
    let (_, done) = answer(&Browser::new(), &server, &user_code, "alice", "deny").await;
    assert!(done.contains("denied"), "{done}");
    poll_expecting(&server, &tool, &device_code, "access_denied").await;

    // The code served its one decision: typed again, it is unknown.
    let res = enter_user_code(&Browser::new(), &server, &server.url("/device"), &user_code).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not valid"));
    let events = server.state.durable.recent_audit(Some(&sub), 20).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "device.authorization" && e.result == "denied"), "{events:?}");
    server.stop().await;
}

async fn an_unanswered_device_code_expires(backend: Backend) {
    let (server, clock) = with_clock(backend).await;
    add_user(&server, "alice").await;
    let tool = add_device_client(&server, "TV", ClientOptions::default()).await;
    let (device_code, user_code) = code_of(&start(&server, &tool, "openid").await);
    clock.advance(599);
    poll_expecting(&server, &tool, &device_code, "authorization_pending").await;
    clock.advance(1);
    poll_expecting(&server, &tool, &device_code, "expired_token").await;

    // At the page, an expired code reads exactly like one that never existed.
    let typed = |code: String| {
        let server = &server;
        async move {
            let res = enter_user_code(&Browser::new(), server, &server.url("/device"), &code).await;
            (res.status(), res.text().await.unwrap().split("id=\"device-error\">").nth(1).unwrap_or_default().split('<').next().unwrap_or_default().to_string())
        }
    };
    let expired = typed(user_code).await;
    let never = typed("BBBB-BBBB".into()).await;
    assert_eq!(expired.0, 400);
    assert!(!expired.1.is_empty());
    assert_eq!(expired, never);
    server.stop().await;
}

async fn wrong_user_codes_are_throttled_per_address(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.device.max_failures_per_ip = 3).await;
    add_user(&server, "alice").await;
    let tool = add_device_client(&server, "TV", ClientOptions::default()).await;
    let (_, user_code) = code_of(&start(&server, &tool, "openid").await);
    let right = user_code.as_str();
    // A right code gives its attempt back.
    let res = enter_user_code(&Browser::new(), &server, &server.url("/device"), right).await;
    assert_eq!(res.status(), 303);
    for guess in ["BBBB-BBBB", "not a code", "ZZZZ-ZZZZ"] {
        let res = enter_user_code(&Browser::new(), &server, &server.url("/device"), guess).await;
        assert_eq!(res.status(), 400, "{guess}");
    }
    // The fourth wrong try from this address is refused before any lookup, even with the right
    // code, and from a fresh browser.
    let res = enter_user_code(&Browser::new(), &server, &server.url("/device"), right).await;
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("Too many wrong codes"));
    server.stop().await;
}

async fn a_client_that_requires_mfa_gets_the_second_factor_before_approval(backend: Backend) {
    let (server, clock) = with_clock(backend).await;
    add_user(&server, "alice").await;
    let user = server.state.durable.user_by_username("alice").await.unwrap().unwrap();
    let (enrolment, _) = Mfa::of(&server.state).provision_totp(&user, None, "test", server.state.now()).await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrolment.secret).unwrap().as_bytes().to_vec();
    let tool = add_device_client(&server, "Vault CLI", ClientOptions { require_mfa: true, ..ClientOptions::default() }).await;
    let (device_code, user_code) = code_of(&start(&server, &tool, "openid").await);

    let browser = Browser::new();
    let next = code_and_password(&browser, &server, &user_code, "alice").await;
    assert!(next.contains("/login/factor?req="), "{backend:?}: the second factor comes before the approval: {next}");
    poll_expecting(&server, &tool, &device_code, "authorization_pending").await;
    let res = enter_code(&browser, &server, &next, &totp::code_at(&secret, clock.now()).unwrap()).await;
    assert_eq!(res.status(), 303, "the code was accepted");
    let res = browser.get(&absolute(&server, &location(&res))).await;
    let (_, done) = answer_consent(&browser, &server, &absolute(&server, &location(&res)), "allow").await;
    assert_eq!(done.status(), 200);

    clock.advance(5);
    let (status, tokens) = poll(&server, &tool, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = id_claims(&tokens);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");
    server.stop().await;
}

async fn a_device_code_serves_only_its_own_client() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let tool = add_device_client(&server, "TV", ClientOptions::default()).await;
    let other = add_device_client(&server, "Other", ClientOptions::default()).await;
    let (device_code, user_code) = code_of(&start(&server, &tool, "openid").await);
    answer(&Browser::new(), &server, &user_code, "alice", "allow").await;
    let (status, body) = poll(&server, &other, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // The refusal spent nothing: the right client still gets its tokens.
    let (status, tokens) = poll(&server, &tool, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    // An unknown device code is invalid_grant too.
    let (status, body) = poll(&server, &tool, "no-such-device-code").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    server.stop().await;
}

async fn only_clients_registered_for_the_grant_start_it() {
    let server = TestServer::start(Backend::Embedded).await;
    let web = add_client(&server, "Web", false, false).await;
    let res = post_as(&server, &web, "/device_authorization", &[("scope", "openid")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "unauthorized_client");

    let tool = add_device_client(&server, "TV", ClientOptions { public: false, ..ClientOptions::default() }).await;
    let wrong = TestClient { secret: Some("wrong".into()), ..TestClient { id: tool.id.clone(), secret: None, redirect_uri: String::new() } };
    let res = post_as(&server, &wrong, "/device_authorization", &[("scope", "openid")]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
    // A confidential client must authenticate: its id alone is not enough.
    let res = http().post(server.url("/device_authorization")).form(&[("client_id", tool.id.as_str()), ("scope", "openid")]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = post_as(&server, &tool, "/device_authorization", &[("scope", "openid admin")]).await;
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // Nor may a web client poll the grant it is not registered for.
    let (status, body) = poll(&server, &web, "whatever").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    server.stop().await;
}

async fn the_link_with_the_code_fills_the_form_but_the_user_submits_it() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let tool = add_device_client(&server, "TV", ClientOptions::default()).await;
    let started = start(&server, &tool, "openid").await;
    let (_, user_code) = code_of(&started);
    let browser = Browser::new();
    let res = browser.get(started["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "the link shows the form, it does not go on by itself");
    let page = res.text().await.unwrap();
    assert!(page.contains(&format!("value=\"{user_code}\"")), "prefilled: {page}");
    // A post without this page's form token (a cross-site form) is refused.
    let res = browser.post_form(&server.url("/device"), &[("user_code", &user_code)]).await;
    assert_eq!(res.status(), 400);
    let res = Browser::new().post_form(&server.url("/device"), &[("csrf", &hidden(&page, "csrf")), ("user_code", &user_code)]).await;
    assert_eq!(res.status(), 400, "another browser cannot use this page's token");
    let res = browser.post_form(&server.url("/device"), &[("csrf", &hidden(&page, "csrf")), ("user_code", &user_code)]).await;
    assert_eq!(res.status(), 303);
    server.stop().await;
}

async fn a_first_party_device_client_is_still_approved_explicitly() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let tool = add_device_client(&server, "Company CLI", ClientOptions { first_party: true, ..ClientOptions::default() }).await;
    let browser = Browser::new();
    for _ in 0..2 {
        // Signed in already the second time, and allowed before: the approval is asked anyway.
        let (_, user_code) = code_of(&start(&server, &tool, "openid").await);
        let res = enter_user_code(&browser, &server, &server.url("/device"), &user_code).await;
        let mut next = absolute(&server, &location(&res));
        if next.contains("/login?req=") {
            next = code_and_password(&browser, &server, &user_code, "alice").await;
        }
        let (consent, done) = answer_consent(&browser, &server, &next, "allow").await;
        assert!(consent.contains(&user_code), "{consent}");
        assert_eq!(done.status(), 200);
    }
    server.stop().await;
}

async fn ending_the_session_before_the_poll_yields_nothing() {
    let server = TestServer::start(Backend::Embedded).await;
    let sub = add_user(&server, "alice").await;
    let tool = add_device_client(&server, "TV", ClientOptions::default()).await;
    let (device_code, user_code) = code_of(&start(&server, &tool, "openid").await);
    answer(&Browser::new(), &server, &user_code, "alice", "allow").await;
    let sessions = server.state.durable.live_sso_sessions(Some(&sub), server.state.now()).await.unwrap();
    SessionEnder::of(&server.state, "test").end(&sessions[0].session.sid, EndReason::Admin).await.unwrap();
    let (status, body) = poll(&server, &tool, &device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    server.stop().await;
}

/// A device that sends a DPoP proof with its poll gets a DPoP-bound access token and, being a
/// public client, a refresh token only its key can use.
async fn a_device_polling_with_a_dpop_key_gets_tokens_bound_to_it(backend: Backend) {
    use crate::support::dpop::DpopKey;
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let tool = add_device_client(&server, "Deploy CLI", ClientOptions::default()).await;
    let (device_code, user_code) = code_of(&start(&server, &tool, "openid offline_access").await);
    answer(&Browser::new(), &server, &user_code, "alice", "allow").await;
    let key = DpopKey::new(sesame::crypto::alg::SigningAlg::ES256);
    let token_url = server.url("/token");
    let with_proof = |form: Vec<(&'static str, String)>, proof: Option<String>| {
        let mut request = http().post(token_url.clone()).form(&form);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        async move {
            let res = request.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let poll_form = vec![("grant_type", DEVICE_GRANT.to_string()), ("device_code", device_code.clone()), ("client_id", tool.id.clone())];
    let (status, tokens) = with_proof(poll_form, Some(key.proof("POST", &token_url, None))).await;
    assert_eq!(status, 200, "{backend:?}: {tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(crate::support::sso::jwt_claims(tokens["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt().as_str());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh_form = || vec![("grant_type", "refresh_token".to_string()), ("refresh_token", refresh.clone()), ("client_id", tool.id.clone())];
    let (status, body) = with_proof(refresh_form(), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{backend:?}: the refresh token without its key");
    let (status, body) = with_proof(refresh_form(), Some(key.proof("POST", &token_url, None))).await;
    assert_eq!(status, 200, "{backend:?}: with its key: {body}");
    server.stop().await;
}
