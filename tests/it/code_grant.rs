//! Redeeming authorization codes: PKCE, binding, single use (with revocation on replay), expiry.

use serde_json::Value;

use crate::sso_support::*;
use crate::support::{backends, http, Backend, TestServer};

async fn code_for(browser: &Browser, server: &TestServer, client: &TestClient, p: &Pkce) -> String {
    let res = browser.get(&authorize_url(server, client, p, &[])).await;
    let url = absolute(server, &location(&res));
    let callback = if url.contains("/login?req=") {
        sign_in(browser, server, &authorize_url(server, client, p, &[]), "alice").await
    } else {
        follow_to_callback(browser, server, url).await
    };
    query_param(&callback, "code").expect("a code")
}

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn pkce_and_binding_are_enforced() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        add_user(&server, "alice").await;
        let app = add_client(&server, "App", true, false).await;
        let other = add_client(&server, "Other", true, false).await;
        let browser = Browser::new();

        let p = pkce();
        let code = code_for(&browser, &server, &app, &p).await;
        assert_eq!(error_of(redeem(&server, &app, &code, "wrong-verifier-wrong-verifier-wrong-verifier-x").await).await, (400, "invalid_grant".into()));
        // The failed attempt consumed the code.
        assert_eq!(error_of(redeem(&server, &app, &code, &p.verifier).await).await.1, "invalid_grant");

        let code = code_for(&browser, &server, &app, &p).await;
        let res = http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &app.redirect_uri)]).send().await.unwrap();
        assert_eq!(error_of(res).await.1, "invalid_grant", "{backend:?}: missing verifier");

        let code = code_for(&browser, &server, &app, &p).await;
        let res = http().post(server.url("/token")).basic_auth(&other.id, other.secret.as_ref()).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &app.redirect_uri), ("code_verifier", &p.verifier)]).send().await.unwrap();
        assert_eq!(error_of(res).await.1, "invalid_grant", "another client's code");

        let code = code_for(&browser, &server, &app, &p).await;
        let res = http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9/other"), ("code_verifier", &p.verifier)]).send().await.unwrap();
        assert_eq!(error_of(res).await.1, "invalid_grant", "redirect_uri mismatch");

        let code = code_for(&browser, &server, &app, &p).await;
        let res = http().post(server.url("/token")).basic_auth(&app.id, Some("wrong")).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &app.redirect_uri), ("code_verifier", &p.verifier)]).send().await.unwrap();
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert_eq!(error_of(res).await, (401, "invalid_client".into()));
    }
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_the_first_redemption_got() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        add_user(&server, "alice").await;
        let app = add_client(&server, "App", true, false).await;
        let browser = Browser::new();
        let p = pkce();
        let code = code_for(&browser, &server, &app, &p).await;
        let first: Value = redeem(&server, &app, &code, &p.verifier).await.json().await.unwrap();
        let access = first["access_token"].as_str().unwrap();
        let res = http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 200);

        assert_eq!(error_of(redeem(&server, &app, &code, &p.verifier).await).await, (400, "invalid_grant".into()));
        let res = http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(res.status(), 401, "{backend:?}: the first redemption's access token still works");
    }
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let server = TestServer::start_with(Backend::Embedded, |c| c.session.code_ttl = std::time::Duration::from_secs(1)).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let p = pkce();
    let code = code_for(&browser, &server, &app, &p).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(error_of(redeem(&server, &app, &code, &p.verifier).await).await.1, "invalid_grant");
}

#[tokio::test]
async fn token_endpoint_refuses_malformed_requests() {
    let server = TestServer::start(Backend::Embedded).await;
    let app = add_client(&server, "App", true, false).await;
    let post = |body: &'static str, content_type: &'static str| {
        http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).header("content-type", content_type).body(body).send()
    };
    assert_eq!(error_of(post("grant_type=authorization_code&code=a&code=b", "application/x-www-form-urlencoded").await.unwrap()).await.1, "invalid_request");
    assert_eq!(error_of(post("{\"grant_type\":\"authorization_code\"}", "application/json").await.unwrap()).await.1, "invalid_request");
    assert_eq!(error_of(post("grant_type=password", "application/x-www-form-urlencoded").await.unwrap()).await.1, "unsupported_grant_type");
    assert_eq!(error_of(post("code=x", "application/x-www-form-urlencoded").await.unwrap()).await.1, "invalid_request");
    assert_eq!(error_of(post("grant_type=client_credentials", "application/x-www-form-urlencoded").await.unwrap()).await.1, "unauthorized_client");
}
