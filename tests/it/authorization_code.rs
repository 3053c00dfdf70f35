//! The authorization_code grant: PKCE, binding to client and redirect URI, single use (with
//! revocation of what the first redemption got when a code comes back), expiry.

use std::time::Duration;

use serde_json::Value;
use sesame::crypto::secrets::hash_hex;

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{eventually, http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("pkce_and_binding_are_enforced", pkce_and_binding_are_enforced)
        .each_backend("a_replayed_code_fails_and_revokes_what_the_first_redemption_got", a_replayed_code_fails_and_revokes_what_the_first_redemption_got)
        .test("an_expired_code_is_refused", an_expired_code_is_refused);
}

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
    let (status, error, _) = refusal(res).await;
    (status, error)
}

/// Status, `error` and `error_description` of a refused token request.
async fn refusal(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_string(), body["error_description"].as_str().unwrap_or_default().to_string())
}

fn grant_refusal(description: &str) -> (u16, String, String) {
    (400, "invalid_grant".into(), description.into())
}

async fn pkce_and_binding_are_enforced(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let other = add_client(&server, "Other", true, false).await;
    let browser = Browser::new();

    let p = pkce();
    let code = code_for(&browser, &server, &app, &p).await;
    assert_eq!(refusal(redeem(&server, &app, &code, "wrong-verifier-wrong-verifier-wrong-verifier-x").await).await, grant_refusal("code_verifier does not match the code_challenge"));
    // The failed attempt consumed the code.
    assert_eq!(refusal(redeem(&server, &app, &code, &p.verifier).await).await, grant_refusal("the authorization code was already used"));

    let code = code_for(&browser, &server, &app, &p).await;
    let res = http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &app.redirect_uri)]).send().await.unwrap();
    assert_eq!(refusal(res).await, grant_refusal("code_verifier is required"), "{backend:?}: missing verifier");

    let code = code_for(&browser, &server, &app, &p).await;
    let res = http().post(server.url("/token")).basic_auth(&other.id, other.secret.as_ref()).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &app.redirect_uri), ("code_verifier", &p.verifier)]).send().await.unwrap();
    assert_eq!(refusal(res).await, grant_refusal("the authorization code was issued to another client"), "another client's code");

    let code = code_for(&browser, &server, &app, &p).await;
    let res = http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9/other"), ("code_verifier", &p.verifier)]).send().await.unwrap();
    assert_eq!(refusal(res).await, grant_refusal("redirect_uri does not match the authorization request"), "redirect_uri mismatch");

    let code = code_for(&browser, &server, &app, &p).await;
    let res = http().post(server.url("/token")).basic_auth(&app.id, Some("wrong")).form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &app.redirect_uri), ("code_verifier", &p.verifier)]).send().await.unwrap();
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(error_of(res).await, (401, "invalid_client".into()));
}

async fn a_replayed_code_fails_and_revokes_what_the_first_redemption_got(backend: Backend) {
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

    assert_eq!(refusal(redeem(&server, &app, &code, &p.verifier).await).await, grant_refusal("the authorization code was already used"));
    let res = http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), 401, "{backend:?}: the first redemption's access token still works");
}

/// Codes live `session.code_ttl` in the ephemeral store, whose expiry is real time (Redis PX,
/// `Instant` in process): the test waits, bounded, for the store to let the code go instead of
/// sleeping a fixed time, then redeems it.
async fn an_expired_code_is_refused() {
    let server = TestServer::start_with(Backend::Embedded, |c| c.session.code_ttl = Duration::from_secs(1)).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    let p = pkce();
    let code = code_for(&browser, &server, &app, &p).await;
    let key = format!("code:{}", hash_hex(&code));
    eventually(Duration::from_secs(10), "the code to expire from the store (code_ttl is 1 s)", || async {
        server.state.ephemeral.get(&key).await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(refusal(redeem(&server, &app, &code, &p.verifier).await).await, grant_refusal("the authorization code is invalid or expired"));
}
