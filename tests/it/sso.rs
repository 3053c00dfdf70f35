//! The browser flow end to end: login, consent, code, tokens, userinfo, single sign-on.

use sesame::crypto::alg::SigningAlg;
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use serde_json::Value;

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("sign_in_consent_code_tokens_userinfo_then_single_sign_on", sign_in_consent_code_tokens_userinfo_then_single_sign_on);
}

async fn verify_jwt(server: &TestServer, token: &str) -> Value {
    let jwks: JwkSet = http().get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("signing key published");
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims
}

async fn sign_in_consent_code_tokens_userinfo_then_single_sign_on(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sub = add_user(&server, "alice").await;
    let wiki = add_client(&server, "Wiki", false, false).await;
    let chat = add_client(&server, "Chat", true, true).await;
    let browser = Browser::new();

    // The login page names the client and carries the security headers.
    let p = pkce();
    let authorize = authorize_url(&server, &wiki, &p, &[]);
    let res = browser.get(&authorize).await;
    let login_url = absolute(&server, &location(&res));
    let res = browser.get(&login_url).await;
    let h = res.headers().clone();
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(!h["content-security-policy"].to_str().unwrap().contains("unsafe-inline"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    assert!(page.contains("Wiki"), "client name shown");
    assert!(page.contains("name=\"username\"") && page.contains("name=\"password\"") && page.contains("<label for=\"password\">"));

    let callback = sign_in(&browser, &server, &authorize, "alice").await;
    assert!(callback.starts_with(&wiki.redirect_uri), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("st-123 &odd"), "state echoed untouched");
    assert_eq!(query_param(&callback, "iss").as_deref(), Some(server.base.as_str()), "RFC 9207 iss");
    let code = query_param(&callback, "code").unwrap();

    let res = redeem(&server, &wiki, &code, &p.verifier).await;
    assert_eq!(res.status(), 200, "{backend:?}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap();
    let at = verify_jwt(&server, access).await;
    assert_eq!(at["sub"], sub.as_str());
    assert_eq!(at["client_id"], wiki.id.as_str());
    let id = verify_jwt(&server, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["iss"], server.base.as_str());
    assert_eq!(id["aud"], wiki.id.as_str());
    assert_eq!(id["sub"], sub.as_str());
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["at_hash"], sesame::tokens::id::at_hash(SigningAlg::RS256, access).as_str());
    assert!(id["auth_time"].as_i64().is_some() && id["sid"].as_str().is_some());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));

    // Userinfo with the access token (its every form and refusal: userinfo.rs).
    let info: Value = http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["preferred_username"], "alice");

    // Single sign-on: a second (first-party) client gets its code with no prompt at all.
    let p2 = pkce();
    let res = browser.get(&authorize_url(&server, &chat, &p2, &[])).await;
    assert_eq!(res.status(), 303);
    let callback = location(&res);
    assert!(callback.starts_with(&chat.redirect_uri), "SSO should skip login: {callback}");
    let res = redeem(&server, &chat, &query_param(&callback, "code").unwrap(), &p2.verifier).await;
    assert_eq!(res.status(), 200);
    let chat_tokens: Value = res.json().await.unwrap();
    let chat_id = verify_jwt(&server, chat_tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(chat_id["aud"], chat.id.as_str());
    assert_eq!(chat_id["sub"], sub.as_str());
    assert_eq!(chat_id["sid"], id["sid"], "one session, one sid, across both clients");
    assert_eq!(chat_id["auth_time"], id["auth_time"], "no new authentication for the second client");

    // The consent given to Wiki is remembered: no consent page the second time.
    let p3 = pkce();
    let res = browser.get(&authorize_url(&server, &wiki, &p3, &[])).await;
    assert!(location(&res).starts_with(&wiki.redirect_uri));
    server.stop().await;
}
