//! Passkeys over HTTP, with a software authenticator (`webauthn-authenticator-rs`' SoftPasskey,
//! which does what a browser and an authenticator do): registration for a signed-in user through
//! the JSON endpoints, then a passkey as the second step of a later sign-in; what is refused
//! (a replayed or re-used registration, an assertion for another request, a replayed finish, a
//! wrong origin, a cloned authenticator's counter, a password-only session of a user with a
//! factor). The server's issuer is on `localhost`: WebAuthn needs a domain.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sesame::oauth::acr::ACR_MFA;
use sesame::store::FactorKind;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_registered_passkey_proves_the_second_step_once", a_registered_passkey_proves_the_second_step_once)
        .test("a_passkey_registration_is_finished_once_and_a_credential_registered_once", a_passkey_registration_is_finished_once_and_a_credential_registered_once)
        .test("a_passkey_assertion_answers_only_its_own_request_and_origin", a_passkey_assertion_answers_only_its_own_request_and_origin)
        .test("a_password_only_session_of_a_user_with_a_factor_registers_no_passkey", a_password_only_session_of_a_user_with_a_factor_registers_no_passkey)
        .test("a_passkey_counter_that_goes_back_is_refused_as_a_clone", a_passkey_counter_that_goes_back_is_refused_as_a_clone)
        .test("passkeys_are_off_on_an_ip_issuer_and_the_code_form_stays", passkeys_are_off_on_an_ip_issuer_and_the_code_form_stays);
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.issuer = "http://localhost".into()).await
}

fn origin(server: &TestServer) -> Url {
    Url::parse(&server.base).unwrap()
}

async fn post_json(browser: &Browser, url: &str, csrf: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = browser.http.post(url).json(body);
    if let Some(csrf) = csrf {
        request = request.header("X-CSRF-Token", csrf);
    }
    request.send().await.unwrap()
}

/// The session's CSRF value, as the account page's script reads it.
async fn account_csrf(browser: &Browser, server: &TestServer) -> String {
    let res = browser.get(&server.url("/account/passkeys")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["csrf"].as_str().unwrap().to_string()
}

/// Begins a registration; returns the JSON the server answered.
async fn register_begin(browser: &Browser, server: &TestServer, csrf: &str) -> reqwest::Response {
    post_json(browser, &server.url("/account/passkeys/begin"), Some(csrf), &json!({})).await
}

/// Runs a whole registration with `authenticator`; returns the finish response and the
/// credential it sent.
async fn register(browser: &Browser, server: &TestServer, authenticator: &mut SoftPasskey, name: &str) -> (reqwest::Response, Value, String) {
    let csrf = account_csrf(browser, server).await;
    let begin = register_begin(browser, server, &csrf).await;
    assert_eq!(begin.status(), 200);
    let begin: Value = begin.json().await.unwrap();
    let ceremony = begin["ceremony"].as_str().unwrap().to_string();
    let options: CreationChallengeResponse = serde_json::from_value(begin).unwrap();
    let credential = authenticator.do_registration(origin(server), options).expect("the authenticator registers");
    let credential = serde_json::to_value(&credential).unwrap();
    let res = post_json(browser, &server.url("/account/passkeys/finish"), Some(&csrf), &json!({"ceremony": ceremony, "name": name, "credential": credential})).await;
    (res, credential, ceremony)
}

/// The second-factor page at `url`: its request id and CSRF value, with the passkey button.
async fn factor_page(browser: &Browser, url: &str) -> (String, String) {
    assert!(url.contains("/login/factor?req="), "{url}");
    let page = browser.get(url).await.text().await.unwrap();
    assert!(page.contains("id=\"use-passkey\""), "the passkey button: {page}");
    assert!(page.contains("src=\"/static/passkey.js\""), "driven by the static script");
    assert!(page.contains("name=\"code\""), "the code form stays for browsers without JavaScript");
    (hidden(&page, "req"), hidden(&page, "csrf"))
}

/// Asks for the options of a passkey step of request `req`.
async fn assertion_options(browser: &Browser, server: &TestServer, req: &str, csrf: &str) -> RequestChallengeResponse {
    let res = post_json(browser, &server.url(&format!("/login/factor/passkey/begin?req={req}")), Some(csrf), &json!({})).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn finish_step(browser: &Browser, server: &TestServer, req: &str, csrf: &str, credential: &Value) -> reqwest::Response {
    post_json(browser, &server.url("/login/factor/passkey/finish"), None, &json!({"req": req, "csrf": csrf, "credential": credential})).await
}

/// A whole passkey step at the factor page `url`; returns the finish response and the assertion.
async fn passkey_step(browser: &Browser, server: &TestServer, authenticator: &mut SoftPasskey, url: &str) -> (reqwest::Response, Value, String, String) {
    let (req, csrf) = factor_page(browser, url).await;
    let options = assertion_options(browser, server, &req, &csrf).await;
    let credential = authenticator.do_authentication(origin(server), options).expect("the authenticator signs");
    let credential = serde_json::to_value(&credential).unwrap();
    (finish_step(browser, server, &req, &csrf, &credential).await, credential, req, csrf)
}

async fn passkey_factors(server: &TestServer) -> Vec<sesame::store::Factor> {
    let sub = server.state.durable.user_by_username("alice").await.unwrap().unwrap().sub;
    server.state.durable.factors(&sub).await.unwrap().into_iter().filter(|f| f.kind == FactorKind::Passkey).collect()
}

async fn audit_kinds(server: &TestServer) -> Vec<(String, String, Option<String>)> {
    let sub = server.state.durable.user_by_username("alice").await.unwrap().unwrap().sub;
    server.state.durable.recent_audit(Some(&sub), 1_000).await.unwrap().into_iter().map(|e| (e.kind, e.result, e.reason)).collect()
}

/// Alice, signed in with her password alone (she has no factor yet) in `browser`; then a passkey.
async fn alice_with_passkey(server: &TestServer, browser: &Browser, authenticator: &mut SoftPasskey) -> TestClient {
    add_user(server, "alice").await;
    let app = add_client(server, "App", true, false).await;
    sign_in(browser, server, &authorize_url(server, &app, &pkce(), &[]), "alice").await;
    let (res, _, _) = register(browser, server, authenticator, "YubiKey").await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    app
}

async fn a_registered_passkey_proves_the_second_step_once(backend: Backend) {
    let server = start(backend).await;
    let mut key = SoftPasskey::new(true);
    let app = alice_with_passkey(&server, &Browser::new(), &mut key).await;
    let stored = passkey_factors(&server).await;
    assert_eq!(stored.len(), 1, "{backend:?}");
    // The account page lists it and, for a session that proved a factor, offers another.
    let signed_in = Browser::new();
    let next = password_step(&signed_in, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    let (res, _, _, _) = passkey_step(&signed_in, &server, &mut key, &next).await;
    assert_eq!(res.status(), 200);
    let page = signed_in.get(&server.url("/account")).await.text().await.unwrap();
    assert!(page.contains("YubiKey") && page.contains("Passkey"), "the passkey is listed");
    assert!(page.contains("id=\"add-passkey\"") && page.contains("/static/passkey.js"), "the account page offers a passkey");
    assert_eq!(stored[0].name, "YubiKey");
    assert!(stored[0].confirmed_at.is_some() && stored[0].credential.is_some());
    assert!(audit_kinds(&server).await.contains(&("mfa.passkey.register".into(), "ok".into(), None)));

    // A later sign-in: the password, then the passkey.
    let browser = Browser::new();
    let p = pkce();
    let next = password_step(&browser, &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    let (res, credential, req, csrf) = passkey_step(&browser, &server, &mut key, &next).await;
    assert_eq!(res.status(), 200, "{backend:?}");
    let redirect = res.json::<Value>().await.unwrap()["redirect"].as_str().unwrap().to_string();
    // The same assertion again: its ceremony was taken.
    let again = finish_step(&browser, &server, &req, &csrf, &credential).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "{backend:?}: a replayed finish");
    let callback = follow_to_callback(&browser, &server, absolute(&server, &redirect)).await;
    let tokens: Value = redeem(&server, &app, &query_param(&callback, "code").expect("a code"), &p.verifier).await.json().await.unwrap();
    let claims = id_claims(&tokens);
    assert_eq!(claims["acr"], ACR_MFA, "{backend:?}: {claims}");
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "user", "mfa"]), "{backend:?}");
    let used = passkey_factors(&server).await;
    assert!(used[0].last_used_at.is_some());
    assert_ne!(used[0].credential, stored[0].credential, "{backend:?}: the counter moved forward");
    let kinds = audit_kinds(&server).await;
    assert!(kinds.contains(&("mfa.passkey.use".into(), "ok".into(), None)), "{kinds:?}");
    assert!(kinds.contains(&("mfa.failure".into(), "denied".into(), Some("no_ceremony".into()))), "{kinds:?}");
}

async fn a_passkey_registration_is_finished_once_and_a_credential_registered_once() {
    let server = start(Backend::Embedded).await;
    let browser = Browser::new();
    let mut key = SoftPasskey::new(true);
    alice_with_passkey(&server, &browser, &mut key).await;
    let first = passkey_factors(&server).await;
    // Registering now needs the second factor (alice has one): prove it with the passkey.
    let app = add_client(&server, "Other", true, false).await;
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[("acr_values", ACR_MFA)])).await;
    let (res, _, _, _) = passkey_step(&browser, &server, &mut key, &absolute(&server, &location(&res))).await;
    assert_eq!(res.status(), 200);

    let csrf = account_csrf(&browser, &server).await;
    // The next registration's options exclude the registered credential.
    let begin: Value = register_begin(&browser, &server, &csrf).await.json().await.unwrap();
    let excluded: Vec<&str> = begin["publicKey"]["excludeCredentials"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(excluded.len(), 1, "{begin}");
    // A registration's answer, replayed: to its own ceremony (taken) and to a fresh one.
    let (res, credential, ceremony) = register(&browser, &server, &mut SoftPasskey::new(true), "Second").await;
    assert_eq!(res.status(), 201);
    let replay = json!({"ceremony": ceremony, "credential": credential});
    let res = post_json(&browser, &server.url("/account/passkeys/finish"), Some(&csrf), &replay).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error_description"], "no_ceremony");
    let fresh: Value = register_begin(&browser, &server, &csrf).await.json().await.unwrap();
    let replay = json!({"ceremony": fresh["ceremony"], "credential": credential});
    let res = post_json(&browser, &server.url("/account/passkeys/finish"), Some(&csrf), &replay).await;
    assert_eq!(res.status(), 400, "the same credential again");
    assert_eq!(passkey_factors(&server).await.len(), 2, "one row per credential");
    assert!(passkey_factors(&server).await.iter().any(|f| f.id == first[0].id));
    // Without the CSRF value: refused, nothing started.
    let res = post_json(&browser, &server.url("/account/passkeys/begin"), None, &json!({})).await;
    assert_eq!(res.status(), 403);
    let res = post_json(&browser, &server.url("/account/passkeys/begin"), Some("wrong"), &json!({})).await;
    assert_eq!(res.status(), 403);
    // Not signed in: refused.
    assert_eq!(post_json(&Browser::new(), &server.url("/account/passkeys/begin"), Some(&csrf), &json!({})).await.status(), 401);
}

async fn a_passkey_assertion_answers_only_its_own_request_and_origin() {
    let server = start(Backend::Embedded).await;
    let mut key = SoftPasskey::new(true);
    let app = alice_with_passkey(&server, &Browser::new(), &mut key).await;
    let browser = Browser::new();
    // Two pending requests in the same browser; an assertion made for the first, sent for the second.
    let first = password_step(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    let (req_a, csrf_a) = factor_page(&browser, &first).await;
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let second = absolute(&server, &location(&res));
    let (req_b, csrf_b) = factor_page(&browser, &second).await;
    assert_ne!(req_a, req_b);
    let options_a = assertion_options(&browser, &server, &req_a, &csrf_a).await;
    let _options_b = assertion_options(&browser, &server, &req_b, &csrf_b).await;
    let for_a = serde_json::to_value(key.do_authentication(origin(&server), options_a).unwrap()).unwrap();
    let res = finish_step(&browser, &server, &req_b, &csrf_b, &for_a).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "an assertion for another request");
    // The first request's CSRF value does not pass for the second.
    assert_eq!(finish_step(&browser, &server, &req_b, &csrf_a, &for_a).await.status(), 400);

    // A wrong origin in the client data: another port of the host, a subdomain.
    for evil in ["http://localhost:1".to_string(), server.base.replace("http://localhost", "https://evil.localhost")] {
        let options = assertion_options(&browser, &server, &req_b, &csrf_b).await;
        let forged = serde_json::to_value(key.do_authentication(Url::parse(&evil).unwrap(), options).unwrap()).unwrap();
        assert_eq!(finish_step(&browser, &server, &req_b, &csrf_b, &forged).await.status(), StatusCode::UNAUTHORIZED, "origin {evil}");
    }
    let kinds = audit_kinds(&server).await;
    assert!(kinds.iter().filter(|k| k.0 == "mfa.failure" && k.2.as_deref() == Some("invalid_assertion")).count() >= 3, "{kinds:?}");
    // The right assertion still works for its own request.
    let options = assertion_options(&browser, &server, &req_a, &csrf_a).await;
    let good = serde_json::to_value(key.do_authentication(origin(&server), options).unwrap()).unwrap();
    assert_eq!(finish_step(&browser, &server, &req_a, &csrf_a, &good).await.status(), 200);
    // Another browser cannot finish this browser's step.
    let stranger = Browser::new();
    assert_eq!(finish_step(&stranger, &server, &req_b, &csrf_b, &good).await.status(), 400);
}

async fn a_password_only_session_of_a_user_with_a_factor_registers_no_passkey() {
    let server = start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let user = server.state.durable.user_by_username("alice").await.unwrap().unwrap();
    sesame::mfa::Mfa::of(&server.state).provision_totp(&user, None, "test", server.state.now()).await.unwrap();
    // The password step made a session; the code was never entered.
    let browser = Browser::new();
    let next = password_step(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    assert!(next.contains("/login/factor?req="));
    let csrf = account_csrf(&browser, &server).await;
    let res = register_begin(&browser, &server, &csrf).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "second_factor_required");
    assert!(passkey_factors(&server).await.is_empty());
}

async fn a_passkey_counter_that_goes_back_is_refused_as_a_clone() {
    let server = start(Backend::Embedded).await;
    let mut key = SoftPasskey::new(true);
    let app = alice_with_passkey(&server, &Browser::new(), &mut key).await;
    // The stored counter is ahead of the authenticator: as if a copy of the key had signed more.
    let factor = passkey_factors(&server).await.remove(0);
    let mut credential: Value = serde_json::from_str(factor.credential.as_deref().unwrap()).unwrap();
    credential["cred"]["counter"] = json!(1000);
    assert!(server.state.durable.update_passkey(&factor.id, factor.credential.as_deref().unwrap(), &credential.to_string(), server.state.now()).await.unwrap());
    let browser = Browser::new();
    let next = password_step(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    let (res, _, _, _) = passkey_step(&browser, &server, &mut key, &next).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.json::<Value>().await.unwrap()["error_description"], "counter_regressed");
    let kinds = audit_kinds(&server).await;
    assert!(kinds.contains(&("mfa.passkey.clone_warning".into(), "denied".into(), Some("counter_regressed".into()))), "{kinds:?}");
}

async fn passkeys_are_off_on_an_ip_issuer_and_the_code_form_stays() {
    let server = TestServer::start(Backend::Embedded).await;
    assert!(server.state.webauthn.is_none());
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    sign_in(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    let csrf = account_csrf(&browser, &server).await;
    assert_eq!(register_begin(&browser, &server, &csrf).await.status(), 404);
    let page = browser.get(&server.url("/account")).await.text().await.unwrap();
    assert!(!page.contains("add-passkey"), "no passkey button where passkeys cannot work");
    let script = browser.get(&server.url("/static/passkey.js")).await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
}
