//! RP-initiated logout and the login page's defences.

use serde_json::Value;

use crate::sso_support::*;
use crate::support::{backends, Backend, TestServer};

async fn signed_in(server: &TestServer, browser: &Browser, app: &TestClient) -> String {
    let p = pkce();
    let callback = sign_in(browser, server, &authorize_url(server, app, &p, &[]), "alice").await;
    let tokens: Value = redeem(server, app, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    tokens["id_token"].as_str().unwrap().to_string()
}

async fn has_session(server: &TestServer, browser: &Browser, app: &TestClient) -> bool {
    let res = browser.get(&authorize_url(server, app, &pkce(), &[("prompt", "none")])).await;
    query_param(&location(&res), "code").is_some()
}

#[tokio::test]
async fn logout_with_a_hint_ends_the_session_and_returns_to_the_client() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        add_user(&server, "alice").await;
        let app = add_client(&server, "App", true, false).await;
        let browser = Browser::new();
        let id_token = signed_in(&server, &browser, &app).await;
        assert!(has_session(&server, &browser, &app).await);

        let bye = "http://127.0.0.1:9/app/bye";
        let url = format!("{}?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s1", server.url("/logout"), urlencode(bye));
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 303, "{backend:?}");
        assert_eq!(location(&res), format!("{bye}?state=s1"));
        assert!(res.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        assert!(!has_session(&server, &browser, &app).await, "{backend:?}: session survived logout");
    }
}

#[tokio::test]
async fn logout_refuses_a_foreign_return_address() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let id_token = signed_in(&server, &browser, &app).await;
    for target in ["https://evil.example.com/", "http://127.0.0.1:9/app/bye/extra", "http://127.0.0.1:9/app/callback"] {
        let url = format!("{}?id_token_hint={id_token}&post_logout_redirect_uri={}", server.url("/logout"), urlencode(target));
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 400, "{target}");
        assert!(res.headers().get("location").is_none());
    }
    // Without a client to match it against, no return address is trusted either.
    let url = format!("{}?post_logout_redirect_uri={}", server.url("/logout"), urlencode("http://127.0.0.1:9/app/bye"));
    assert_eq!(browser.get(&url).await.status(), 400);
    assert!(has_session(&server, &browser, &app).await, "a refused logout leaves the session alone");
    let res = browser.get(&format!("{}?id_token_hint=not.a.jwt", server.url("/logout"))).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn logout_without_proof_asks_first() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    signed_in(&server, &browser, &app).await;

    let res = browser.get(&format!("{}?client_id={}&post_logout_redirect_uri={}&state=s2", server.url("/logout"), app.id, urlencode("http://127.0.0.1:9/app/bye"))).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(has_session(&server, &browser, &app).await, "not ended before confirmation");
    let csrf = hidden(&page, "csrf");
    // A forged confirmation (wrong CSRF token) does nothing.
    let res = browser.post_form(&server.url("/logout/confirm"), &[("csrf", "forged"), ("decision", "logout")]).await;
    assert_eq!(res.status(), 400);
    assert!(has_session(&server, &browser, &app).await);
    let res = browser
        .post_form(&server.url("/logout/confirm"), &[("csrf", &csrf), ("decision", "logout"), ("client_id", &app.id), ("post_logout_redirect_uri", "http://127.0.0.1:9/app/bye"), ("state", "s2")])
        .await;
    assert_eq!(location(&res), "http://127.0.0.1:9/app/bye?state=s2");
    assert!(!has_session(&server, &browser, &app).await);
}

#[tokio::test]
async fn login_failures_are_generic_and_throttled() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |c| c.login.max_failures_per_account = 3).await;
        add_user(&server, "alice").await;
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

        // A forged form (wrong CSRF token) is refused outright.
        let forged = browser.post_form(&server.url("/login"), &[("req", &req), ("csrf", "x"), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_eq!(forged.status(), 400);
    }
}

#[tokio::test]
async fn session_cookie_is_fresh_httponly_and_lax() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let page = browser.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let planted = "sesame_session=planted-by-attacker";
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

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
