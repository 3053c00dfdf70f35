//! The UserInfo endpoint: the token in the header or the form body (never both), claims by
//! scope, and RFC 6750 refusals.

use serde_json::Value;
use sesame::store::AuthMethod;

use crate::support::harness::Tests;
use crate::support::machine::add_machine;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("header_or_form_body_claims_by_scope_and_refusals", header_or_form_body_claims_by_scope_and_refusals);
}

/// Signs alice in for a first-party client with `scope`; returns her sub and an access token.
async fn access_token(server: &TestServer, browser: &Browser, app: &TestClient, scope: &str) -> String {
    let p = pkce();
    let callback = sign_in(browser, server, &authorize_url(server, app, &p, &[("scope", scope)]), "alice").await;
    let tokens: Value = redeem(server, app, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    tokens["access_token"].as_str().expect("an access token").to_string()
}

async fn header_or_form_body_claims_by_scope_and_refusals(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sub = add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let access = access_token(&server, &Browser::new(), &app, "openid profile email").await;

    // Header or form body.
    let res = http().get(server.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 200, "{backend:?}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["name"], "Alice Example");
    let info: Value = http().post(server.url("/userinfo")).form(&[("access_token", access.as_str())]).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    let both = http().post(server.url("/userinfo")).bearer_auth(&access).form(&[("access_token", access.as_str())]).send().await.unwrap();
    assert_eq!(both.status(), 400, "the token in two places");
    assert_eq!(both.json::<Value>().await.unwrap()["error"], "invalid_request");

    // Claims by scope: openid alone gives the subject only.
    let narrow = access_token(&server, &Browser::new(), &app, "openid").await;
    let info: Value = http().get(server.url("/userinfo")).bearer_auth(&narrow).send().await.unwrap().json().await.unwrap();
    assert_eq!(info, serde_json::json!({"sub": sub}), "{backend:?}: claims beyond the granted scopes");

    // A bad token, and no token at all (RFC 6750 §3.1: no error code when none was sent).
    let bad = http().get(server.url("/userinfo")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    let none = http().get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let challenge = none.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "{challenge}");

    // A token without the openid scope (a machine's) is not a userinfo token.
    let machine = add_machine(&server, "Batch", "reports:read", AuthMethod::ClientSecretBasic).await;
    let body: Value = http()
        .post(server.url("/token"))
        .basic_auth(&machine.id, machine.secret.as_ref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http().get(server.url("/userinfo")).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));

    // A disabled user's tokens stop answering.
    assert!(server.state.durable.set_user_disabled("alice", true).await.unwrap());
    let res = http().get(server.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 401, "{backend:?}: a disabled user's claims were served");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_token");
}
