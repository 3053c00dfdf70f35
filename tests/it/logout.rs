//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): with an ID token hint it ends
//! the session and returns to the client; without proof it asks first; it never returns to an
//! address the client did not register.

use serde_json::Value;

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("logout_with_a_hint_ends_the_session_and_returns_to_the_client", logout_with_a_hint_ends_the_session_and_returns_to_the_client)
        .test("logout_refuses_a_foreign_return_address", logout_refuses_a_foreign_return_address)
        .test("logout_without_proof_asks_first", logout_without_proof_asks_first);
}

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

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn logout_with_a_hint_ends_the_session_and_returns_to_the_client(backend: Backend) {
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

async fn logout_refuses_a_foreign_return_address() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let id_token = signed_in(&server, &browser, &app).await;
    let not_registered = "The address to return to after sign-out is not registered for this application.";
    for target in ["https://evil.example.com/", "http://127.0.0.1:9/app/bye/extra", "http://127.0.0.1:9/app/callback"] {
        let url = format!("{}?id_token_hint={id_token}&post_logout_redirect_uri={}", server.url("/logout"), urlencode(target));
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 400, "{target}");
        assert!(res.headers().get("location").is_none());
        assert_eq!(error_page_message(res).await, not_registered, "{target}");
    }
    // Without a client to match it against, no return address is trusted either.
    let url = format!("{}?post_logout_redirect_uri={}", server.url("/logout"), urlencode("http://127.0.0.1:9/app/bye"));
    let res = browser.get(&url).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_page_message(res).await, not_registered);
    assert!(has_session(&server, &browser, &app).await, "a refused logout leaves the session alone");
    let res = browser.get(&format!("{}?id_token_hint=not.a.jwt", server.url("/logout"))).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_page_message(res).await, "The id_token_hint is not a valid ID token from this server.");
    assert!(has_session(&server, &browser, &app).await);
}

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
    assert_eq!(error_page_message(res).await, "The sign-out form was not sent by this page.");
    assert!(has_session(&server, &browser, &app).await);
    let res = browser
        .post_form(&server.url("/logout/confirm"), &[("csrf", &csrf), ("decision", "logout"), ("client_id", &app.id), ("post_logout_redirect_uri", "http://127.0.0.1:9/app/bye"), ("state", "s2")])
        .await;
    assert_eq!(location(&res), "http://127.0.0.1:9/app/bye?state=s2");
    assert!(!has_session(&server, &browser, &app).await);
}
