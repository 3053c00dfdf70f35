//! The account page (`/account`): the signed-in user sets up an authenticator app, sees and
//! removes factors, replaces recovery codes and signs out. Forms carry the session's CSRF value;
//! once the user has a factor, only a session that proved one may change anything.

use sesame::clock::{Clock, SystemClock};
use sesame::mfa::{self, totp, Mfa};

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_signed_in_user_adds_an_authenticator_app", a_signed_in_user_adds_an_authenticator_app)
        .each_backend("a_password_alone_does_not_change_an_existing_factor", a_password_alone_does_not_change_an_existing_factor)
        .test("a_cross_site_post_changes_nothing", a_cross_site_post_changes_nothing)
        .test("signing_out_ends_the_session", signing_out_ends_the_session)
        .test("without_a_session_the_page_shows_no_one", without_a_session_the_page_shows_no_one);
}

fn base32_decode(text: &str) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(text).unwrap().as_bytes().to_vec()
}

fn now_code(secret: &[u8]) -> String {
    totp::code_at(secret, SystemClock.now()).unwrap()
}

async fn sub_of(server: &TestServer, username: &str) -> String {
    server.state.durable.user_by_username(username).await.unwrap().unwrap().sub
}

async fn factors(server: &TestServer, username: &str) -> mfa::FactorList {
    mfa::list_factors(server.state.durable.as_ref(), &sub_of(server, username).await).await.unwrap()
}

/// A confirmed authenticator app for `username`: its secret's bytes and the recovery codes.
async fn with_app(server: &TestServer, username: &str) -> (Vec<u8>, Vec<String>) {
    let user = server.state.durable.user_by_username(username).await.unwrap().unwrap();
    let (enrolment, codes) = Mfa::of(&server.state).provision_totp(&user, Some("Phone"), "test", server.state.now()).await.unwrap();
    (base32_decode(&enrolment.secret), codes.unwrap_or_default())
}

/// A sign-in through the second step with `code` (an app's code or a recovery code).
async fn sign_in_with_code(browser: &Browser, server: &TestServer, app: &TestClient, username: &str, code: &str) {
    let next = password_step(browser, server, &authorize_url(server, app, &pkce(), &[]), username).await;
    assert!(next.contains("/login/factor?req="), "{next}");
    let page = browser.get(&next).await.text().await.unwrap();
    let res = browser.post_form(&server.url("/login/factor"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("code", code)]).await;
    assert_eq!(res.status(), 303, "the code was accepted");
    let callback = follow_to_callback(browser, server, absolute(server, &location(&res))).await;
    assert!(query_param(&callback, "code").is_some(), "{callback}");
}

/// The account page as this browser sees it.
async fn account(browser: &Browser, server: &TestServer) -> (u16, String) {
    let res = browser.get(&server.url("/account")).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(browser: &Browser, server: &TestServer, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = browser.post_form(&server.url(path), form).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

fn recovery_codes(page: &str) -> Vec<String> {
    page.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_string()).collect()
}

async fn a_signed_in_user_adds_an_authenticator_app(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    sign_in(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;

    let (status, page) = account(&browser, &server).await;
    assert_eq!(status, 200, "{backend:?}: {page}");
    assert!(page.contains("alice") && page.contains("id=\"no-factors\""), "{page}");
    let csrf = hidden(&page, "csrf");

    // A password session may add the first app.
    let (status, page) = post(&browser, &server, "/account/totp", &[("csrf", &csrf), ("name", "Work phone")]).await;
    assert_eq!(status, 200, "{backend:?}: {page}");
    assert!(page.contains("<svg") && page.contains("otpauth://totp/"), "a QR code and the otpauth URI");
    let secret_text = page.split("<code id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let factor_id = hidden(&page, "factor_id");

    // A wrong code shows the same secret again.
    let (status, page) = post(&browser, &server, "/account/totp/confirm", &[("csrf", &csrf), ("factor_id", &factor_id), ("code", "000000")]).await;
    assert_eq!(status, 401);
    assert!(page.contains(&secret_text), "the same secret, to retry with the same app");
    assert!(!factors(&server, "alice").await.has_confirmed_factor());

    let code = now_code(&base32_decode(&secret_text));
    let (status, page) = post(&browser, &server, "/account/totp/confirm", &[("csrf", &csrf), ("factor_id", &factor_id), ("code", &code)]).await;
    assert_eq!(status, 200, "{backend:?}: {page}");
    assert_eq!(recovery_codes(&page).len(), 10, "ten recovery codes, shown once");
    assert!(page.contains("id=\"continue\" href=\"/account\""), "{page}");

    let list = factors(&server, "alice").await;
    assert!(list.has_confirmed_factor(), "{backend:?}");
    assert_eq!(list.recovery_codes_left, 10);
    let (_, page) = account(&browser, &server).await;
    assert!(page.contains("Work phone") && page.contains("10 of 10 recovery codes left"), "{page}");
    assert!(page.contains("action=\"/account/factors/remove\""), "the confirming code proved a factor for this session");

    // The next sign-in asks for the app's code.
    let next = password_step(&Browser::new(), &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    assert!(next.contains("/login/factor?req="), "{backend:?}: {next}");
}

async fn a_password_alone_does_not_change_an_existing_factor(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let (_, old_codes) = with_app(&server, "alice").await;
    let factor_id = factors(&server, "alice").await.factors[0].id.clone();

    // A stolen password: the password step makes a session, the second step is never passed.
    let thief = Browser::new();
    password_step(&thief, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    let (status, page) = account(&thief, &server).await;
    assert_eq!(status, 200);
    assert!(page.contains("Phone") && page.contains("id=\"account-locked\""), "{page}");
    let csrf = hidden(&page, "csrf");
    for (path, form) in [
        ("/account/factors/remove", vec![("csrf", csrf.as_str()), ("factor_id", factor_id.as_str())]),
        ("/account/recovery-codes", vec![("csrf", csrf.as_str())]),
        ("/account/totp", vec![("csrf", csrf.as_str())]),
    ] {
        let (status, page) = post(&thief, &server, path, &form).await;
        assert_eq!(status, 403, "{backend:?}: {path}: {page}");
        assert!(page.contains("Verify it&#39;s you first") || page.contains("Verify it's you first"), "{page}");
        assert!(!page.contains("<li><code>"), "no recovery codes");
    }
    let list = factors(&server, "alice").await;
    assert_eq!(list.factors.len(), 1, "{backend:?}: the factor stays");

    // The owner proves the factor (with an old recovery code: still valid, so not replaced).
    let owner = Browser::new();
    sign_in_with_code(&owner, &server, &app, "alice", &old_codes[0]).await;
    let (_, page) = account(&owner, &server).await;
    assert!(!page.contains("account-locked"), "{page}");
    let csrf = hidden(&page, "csrf");
    let (status, page) = post(&owner, &server, "/account/recovery-codes", &[("csrf", &csrf)]).await;
    assert_eq!(status, 200, "{backend:?}: {page}");
    let new_codes = recovery_codes(&page);
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));
    assert_eq!(factors(&server, "alice").await.recovery_codes_left, 10);
    let res = owner.post_form(&server.url("/account/factors/remove"), &[("csrf", &csrf), ("factor_id", &factor_id)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/account");
    assert!(factors(&server, "alice").await.factors.is_empty(), "{backend:?}: removed");
}

async fn a_cross_site_post_changes_nothing() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    add_user(&server, "mallory").await;
    let app = add_client(&server, "App", true, false).await;
    let (_, codes) = with_app(&server, "alice").await;
    let factor_id = factors(&server, "alice").await.factors[0].id.clone();
    let victim = Browser::new();
    sign_in_with_code(&victim, &server, &app, "alice", &codes[0]).await;
    assert_eq!(factors(&server, "alice").await.recovery_codes_left, 9);
    let (_, page) = account(&victim, &server).await;
    assert!(!page.contains("account-locked"), "the victim's session may change factors");

    // Another session's CSRF value (the attacker's own) is as good as none.
    let attacker = Browser::new();
    sign_in(&attacker, &server, &authorize_url(&server, &app, &pkce(), &[]), "mallory").await;
    let (_, page) = account(&attacker, &server).await;
    let attackers_csrf = hidden(&page, "csrf");

    for csrf in [None, Some("wrong"), Some(attackers_csrf.as_str())] {
        let with = |mut form: Vec<(&'static str, String)>| {
            if let Some(c) = csrf {
                form.push(("csrf", c.to_string()));
            }
            form
        };
        let forms = [
            ("/account/factors/remove", with(vec![("factor_id", factor_id.clone())])),
            ("/account/recovery-codes", with(vec![])),
            ("/account/totp", with(vec![])),
            ("/account/sign-out", with(vec![])),
        ];
        for (path, form) in forms {
            // The victim's browser sends its cookie along; the form lacks the session's value.
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, page) = post(&victim, &server, path, &form).await;
            assert_eq!(status, 400, "{path} with {csrf:?}: {page}");
            assert!(!page.contains("<svg") && !page.contains("<li><code>"), "{page}");
        }
    }
    let list = factors(&server, "alice").await;
    assert_eq!(list.factors.len(), 1, "no factor removed or added");
    assert_eq!(list.recovery_codes_left, 9, "the recovery codes were not replaced");
    let (status, page) = account(&victim, &server).await;
    assert_eq!(status, 200, "still signed in");
    assert!(page.contains("alice"));
}

async fn signing_out_ends_the_session() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    sign_in(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    let old_cookie = browser.cookies_for(&server.url("/account"));
    assert!(!old_cookie.is_empty());
    let (_, page) = account(&browser, &server).await;

    let res = browser.post_form(&server.url("/account/sign-out"), &[("csrf", &hidden(&page, "csrf"))]).await;
    assert_eq!(res.status(), 200);
    let cleared = res.headers().get("set-cookie").expect("the cookie is cleared").to_str().unwrap().to_string();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    assert_eq!(account(&browser, &server).await.0, 401);
    // Ended on the server too: the old cookie, replayed, names no session.
    let replayed = crate::support::http().get(server.url("/account")).header("cookie", &old_cookie).send().await.unwrap();
    assert_eq!(replayed.status(), 401);
    // The next authorization asks to sign in again.
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).contains("/login?req="), "{}", location(&res));
}

async fn without_a_session_the_page_shows_no_one() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    with_app(&server, "alice").await;
    let factor_id = factors(&server, "alice").await.factors[0].id.clone();
    // Alice is signed in elsewhere; that changes nothing for other browsers.
    password_step(&Browser::new(), &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;

    let cookie_name = server.state.config.cookie_name(&server.state.config.session.cookie_name);
    let anonymous = crate::support::http();
    for cookie in [None, Some(format!("{cookie_name}=not-a-session"))] {
        let mut request = anonymous.get(server.url("/account"));
        if let Some(c) = &cookie {
            request = request.header("cookie", c);
        }
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), 401, "{cookie:?}");
        let page = res.text().await.unwrap();
        assert!(page.contains("Sign in through an application first"), "{page}");
        assert!(!page.contains("alice") && !page.contains("Phone") && !page.contains("name=\"csrf\""), "{page}");
    }
    let res = anonymous.post(server.url("/account/factors/remove")).form(&[("csrf", ""), ("factor_id", factor_id.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(factors(&server, "alice").await.factors.len(), 1);
}
