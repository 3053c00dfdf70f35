//! The login page's defences: generic failures, per-account throttling, CSRF, and a fresh,
//! HttpOnly, SameSite session cookie.

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("login_failures_are_generic_and_throttled", login_failures_are_generic_and_throttled)
        .test("session_cookie_is_fresh_httponly_and_lax", session_cookie_is_fresh_httponly_and_lax)
        .test("behind_a_trusted_proxy_failures_count_per_browser_address", behind_a_trusted_proxy_failures_count_per_browser_address);
}

async fn login_failures_are_generic_and_throttled(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login.max_failures_per_account = 3).await;
    add_user(&server, "alice").await;
    add_user(&server, "bob").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let login_url = absolute(&server, &location(&res));
    let page = browser.get(&login_url).await.text().await.unwrap();
    let (req, csrf) = (hidden(&page, "req"), hidden(&page, "csrf"));
    let attempt = |user: &'static str, password: &'static str| {
        let form = [("req", req.clone()), ("csrf", csrf.clone()), ("username", user.to_string()), ("password", password.to_string())];
        browser.http.post(server.url("/login")).form(&form).send()
    };
    let unknown = attempt("mallory", "whatever").await.unwrap();
    assert_eq!(unknown.status(), 401);
    let unknown_text = unknown.text().await.unwrap();
    let wrong = attempt("alice", "wrong password").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.unwrap();
    assert!(wrong_text.contains("Wrong username or password.") && unknown_text.contains("Wrong username or password."), "generic message");
    attempt("alice", "wrong again").await.unwrap();
    attempt("alice", "and again").await.unwrap();
    let throttled = attempt("alice", PASSWORD).await.unwrap();
    assert_eq!(throttled.status(), 429, "{backend:?}: even the right password waits while throttled");
    assert!(throttled.text().await.unwrap().contains("Too many failed sign-in attempts"));
    assert_eq!(attempt("ALICE", PASSWORD).await.unwrap().status(), 429, "the account, whatever its spelling");
    // The throttle is per account: bob, from the same address, signs in.
    let res = attempt("bob", PASSWORD).await.unwrap();
    assert_eq!(res.status(), 303, "{backend:?}: another account was throttled too");
    assert!(location(&res).starts_with("/authorize/resume?req="));

    // A forged form (wrong CSRF token) is refused outright.
    let forged = browser.post_form(&server.url("/login"), &[("req", &req), ("csrf", "x"), ("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(forged.status(), 400);
    assert_eq!(error_page_message(forged).await, "The sign-in form was not sent by this page. Go back and try again.");
}

/// Behind a trusted proxy every browser arrives from the proxy's address: the per-address
/// throttle must count the forwarded browser address, or one attacker locks everyone out.
async fn behind_a_trusted_proxy_failures_count_per_browser_address() {
    let server = TestServer::start_with(Backend::Embedded, |c| {
        c.login.max_failures_per_ip = 2;
        c.login.max_failures_per_account = 100;
        c.trusted_proxies = sesame::config::TrustedProxies::parse(&["127.0.0.1/32"]).unwrap();
    })
    .await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let page = browser.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let (req, csrf) = (hidden(&page, "req"), hidden(&page, "csrf"));
    let attempt = |from: &'static str, password: &'static str| {
        let form = [("req", req.clone()), ("csrf", csrf.clone()), ("username", "alice".to_string()), ("password", password.to_string())];
        browser.http.post(server.url("/login")).header("x-forwarded-for", from).form(&form).send()
    };
    for _ in 0..2 {
        assert_eq!(attempt("203.0.113.66", "guess").await.unwrap().status(), 401);
    }
    assert_eq!(attempt("203.0.113.66", "guess").await.unwrap().status(), 429, "the attacker's address is throttled");
    let res = attempt("198.51.100.7", PASSWORD).await.unwrap();
    assert_eq!(res.status(), 303, "another browser behind the same proxy was throttled with the attacker");
}

async fn session_cookie_is_fresh_httponly_and_lax() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let page = browser.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    // Beside this browser's own cookies, one an attacker planted (a session id they know).
    let planted = format!("{}; sesame_session=planted-by-attacker", browser.cookies_for(&server.url("/login")));
    let res = browser
        .http
        .post(server.url("/login"))
        .header("cookie", planted)
        .form(&[("req", hidden(&page, "req")), ("csrf", hidden(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("sesame_session=") && !cookie.contains("planted"));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "plain http on loopback");
}
