//! Sign-in with a second factor: an authenticator app's code (once per time step) or a
//! recovery code (once) after the password; enrolment first when a factor is required and the
//! user has none; `acr_values` and `max_age` ask for it; ID tokens say what was proven.

use serde_json::Value;
use sesame::clock::{Clock, SystemClock};
use sesame::mfa::{totp, Mfa};
use sesame::oauth::acr::{ACR_MFA, ACR_PASSWORD};

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("an_enrolled_user_proves_a_code_once_after_the_password", an_enrolled_user_proves_a_code_once_after_the_password)
        .test("a_recovery_code_works_once_in_place_of_the_app", a_recovery_code_works_once_in_place_of_the_app)
        .each_backend("a_required_factor_is_set_up_before_the_code_is_issued", a_required_factor_is_set_up_before_the_code_is_issued)
        .test("acr_values_and_prompt_none_ask_for_the_second_factor", acr_values_and_prompt_none_ask_for_the_second_factor)
        .test("the_second_step_belongs_to_the_browser_that_signed_in", the_second_step_belongs_to_the_browser_that_signed_in)
        .each_backend("a_client_that_requires_mfa_gets_it_while_others_keep_the_password_session", a_client_that_requires_mfa_gets_it_while_others_keep_the_password_session);
}

/// Provisions a confirmed authenticator app for `username`; returns its secret's bytes and the
/// recovery codes.
async fn with_app(server: &TestServer, username: &str) -> (Vec<u8>, Vec<String>) {
    let user = server.state.durable.user_by_username(username).await.unwrap().unwrap();
    let (enrolment, codes) = Mfa::of(&server.state).provision_totp(&user, None, "test", server.state.now()).await.unwrap();
    (base32_decode(&enrolment.secret), codes.unwrap_or_default())
}

fn base32_decode(text: &str) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(text).unwrap().as_bytes().to_vec()
}

async fn tokens_after(browser: &Browser, server: &TestServer, app: &TestClient, p: &Pkce, next: reqwest::Response) -> Value {
    assert_eq!(next.status(), 303, "the factor was accepted");
    let callback = follow_to_callback(browser, server, absolute(server, &location(&next))).await;
    redeem(server, app, &query_param(&callback, "code").expect("a code"), &p.verifier).await.json().await.unwrap()
}

async fn an_enrolled_user_proves_a_code_once_after_the_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let (secret, _) = with_app(&server, "alice").await;

    let browser = Browser::new();
    let p = pkce();
    let next = password_step(&browser, &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    assert!(next.contains("/login/factor?req="), "{backend:?}: an enrolled user is asked for the code: {next}");
    let wrong = enter_code(&browser, &server, &next, "000000").await;
    assert_eq!(wrong.status(), 401);
    let now = SystemClock.now();
    let code = totp::code_at(&secret, now).unwrap();
    let tokens = tokens_after(&browser, &server, &app, &p, enter_code(&browser, &server, &next, &code).await).await;
    let claims = id_claims(&tokens);
    assert_eq!(claims["acr"], ACR_MFA, "{backend:?}: {claims}");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // The same code in another sign-in within its window: spent.
    let other = Browser::new();
    let next = password_step(&other, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    assert_eq!(enter_code(&other, &server, &next, &code).await.status(), 401, "{backend:?}: a code was accepted twice");
}

async fn a_recovery_code_works_once_in_place_of_the_app() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let (_, codes) = with_app(&server, "alice").await;
    assert_eq!(codes.len(), 10);
    let browser = Browser::new();
    let p = pkce();
    let next = password_step(&browser, &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    let tokens = tokens_after(&browser, &server, &app, &p, enter_code(&browser, &server, &next, &codes[3]).await).await;
    assert_eq!(id_claims(&tokens)["acr"], ACR_MFA);
    let again = Browser::new();
    let next = password_step(&again, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    assert_eq!(enter_code(&again, &server, &next, &codes[3]).await.status(), 401, "a recovery code works once");
    assert_eq!(enter_code(&again, &server, &next, &codes[4].to_lowercase()).await.status(), 303, "another one still works, in any case");
}

/// Confirms an enrolment page at `url` with the app's first code; returns the tokens.
async fn enrol(browser: &Browser, server: &TestServer, app: &TestClient, p: &Pkce, url: &str) -> Value {
    assert!(url.contains("/login/enrol?req="), "{url}");
    let page = browser.get(url).await.text().await.unwrap();
    assert!(page.contains("<svg"), "a QR code, rendered by the server");
    assert!(page.contains("otpauth://totp/"), "the otpauth URI");
    let secret_text = page.split("<code id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap();
    let code = totp::code_at(&base32_decode(secret_text), SystemClock.now()).unwrap();
    let form = [("req", hidden(&page, "req")), ("csrf", hidden(&page, "csrf")), ("factor_id", hidden(&page, "factor_id")), ("code", code)];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = browser.post_form(&server.url("/login/enrol"), &form).await;
    assert_eq!(res.status(), 200, "the recovery codes are shown once");
    let page = res.text().await.unwrap();
    assert_eq!(page.matches("<li><code>").count(), 10, "ten recovery codes");
    let continue_to = page.split("id=\"continue\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let callback = follow_to_callback(browser, server, absolute(server, &continue_to)).await;
    redeem(server, app, &query_param(&callback, "code").expect("a code"), &p.verifier).await.json().await.unwrap()
}

async fn a_required_factor_is_set_up_before_the_code_is_issued(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.mfa.required = true).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let p = pkce();
    let next = password_step(&browser, &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    let tokens = enrol(&browser, &server, &app, &p, &next).await;
    assert_eq!(id_claims(&tokens)["acr"], ACR_MFA, "{backend:?}");
    let sub = server.state.durable.user_by_username("alice").await.unwrap().unwrap().sub;
    assert!(sesame::mfa::list_factors(server.state.durable.as_ref(), &sub).await.unwrap().has_confirmed_factor());
}

async fn acr_values_and_prompt_none_ask_for_the_second_factor() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    // Without a factor and without asking: a password is enough, and the ID token says so.
    let p = pkce();
    let callback = sign_in(&browser, &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    let tokens: Value = redeem(&server, &app, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    assert_eq!(id_claims(&tokens)["acr"], ACR_PASSWORD);
    // The same session asked silently for MFA: the user must interact.
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[("prompt", "none"), ("acr_values", ACR_MFA)])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("interaction_required"));
    // Asked interactively: enrol (the user has no factor yet), then the code carries MFA.
    let p = pkce();
    let res = browser.get(&authorize_url(&server, &app, &p, &[("acr_values", ACR_MFA)])).await;
    let tokens = enrol(&browser, &server, &app, &p, &absolute(&server, &location(&res))).await;
    assert_eq!(id_claims(&tokens)["acr"], ACR_MFA);
    let doc: Value = crate::support::http().get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["acr_values_supported"], serde_json::json!([ACR_PASSWORD, ACR_MFA]));
}

async fn the_second_step_belongs_to_the_browser_that_signed_in() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let (secret, _) = with_app(&server, "alice").await;
    let victim = Browser::new();
    let next = password_step(&victim, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    // Another browser with the link (and a code it somehow knows) gets nowhere.
    let attacker = Browser::new();
    let page = attacker.get(&next).await;
    assert_eq!(error_page_message(page).await, "This sign-in was started in another browser or window. Go back to the application and sign in again.");
    // And the resume link does not skip the step.
    let resume = next.replace("/login/factor", "/authorize/resume");
    let res = victim.get(&resume).await;
    assert!(location(&res).contains("/login/factor?req="), "resuming without the code asks for it again");
    let code = totp::code_at(&secret, SystemClock.now()).unwrap();
    assert_eq!(enter_code(&victim, &server, &next, &code).await.status(), 303);
}

async fn a_client_that_requires_mfa_gets_it_while_others_keep_the_password_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let wiki = add_client(&server, "Wiki", true, false).await;
    let mut spec = sesame::admin::clients::NewClient::new("Payroll");
    spec.redirect_uris = vec!["http://127.0.0.1:9/payroll/callback".into()];
    spec.first_party = true;
    spec.require_mfa = true;
    let created = sesame::admin::clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let payroll = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() };

    let browser = Browser::new();
    let p = pkce();
    let callback = sign_in(&browser, &server, &authorize_url(&server, &wiki, &p, &[]), "alice").await;
    let tokens: Value = redeem(&server, &wiki, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    assert_eq!(id_claims(&tokens)["acr"], ACR_PASSWORD, "{backend:?}: the wiki asks for nothing more");
    // The same browser, signed in, goes to payroll: it must set up and prove a second factor.
    let p = pkce();
    let res = browser.get(&authorize_url(&server, &payroll, &p, &[])).await;
    let next = absolute(&server, &location(&res));
    assert!(next.contains("/login/enrol?req="), "{backend:?}: payroll requires MFA: {next}");
    let tokens = enrol(&browser, &server, &payroll, &p, &next).await;
    assert_eq!(id_claims(&tokens)["acr"], ACR_MFA, "{backend:?}");
}
