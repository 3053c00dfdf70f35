//! The browser flow end to end: login, consent, code, tokens, userinfo, single sign-on.

use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use serde_json::Value;

use crate::sso_support::*;
use crate::support::{backends, http, Backend, TestServer};

async fn verify_jwt(server: &TestServer, token: &str) -> Value {
    let jwks: JwkSet = http().get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("signing key published");
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims
}

#[tokio::test]
async fn sign_in_consent_code_tokens_userinfo_then_single_sign_on() {
    for backend in backends() {
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
        assert_eq!(id["at_hash"], sesame::oidc::id_token::at_hash("RS256", access).as_str());
        assert!(id["auth_time"].as_i64().is_some() && id["sid"].as_str().is_some());
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));

        // Userinfo: header or form body, claims by scope.
        let info: Value = http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
        assert_eq!(info["sub"], sub.as_str());
        assert_eq!(info["email"], "alice@example.com");
        assert_eq!(info["preferred_username"], "alice");
        let info: Value = http().post(server.url("/userinfo")).form(&[("access_token", access)]).send().await.unwrap().json().await.unwrap();
        assert_eq!(info["sub"], sub.as_str());
        let bad = http().get(server.url("/userinfo")).bearer_auth("nope").send().await.unwrap();
        assert_eq!(bad.status(), 401);
        assert!(bad.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
        let none = http().get(server.url("/userinfo")).send().await.unwrap();
        assert_eq!(none.status(), 401);

        // Single sign-on: a second (first-party) client gets its code with no prompt at all.
        let p2 = pkce();
        let res = browser.get(&authorize_url(&server, &chat, &p2, &[])).await;
        assert_eq!(res.status(), 303);
        let callback = location(&res);
        assert!(callback.starts_with(&chat.redirect_uri), "SSO should skip login: {callback}");
        let res = redeem(&server, &chat, &query_param(&callback, "code").unwrap(), &p2.verifier).await;
        assert_eq!(res.status(), 200);

        // The consent given to Wiki is remembered: no consent page the second time.
        let p3 = pkce();
        let res = browser.get(&authorize_url(&server, &wiki, &p3, &[])).await;
        assert!(location(&res).starts_with(&wiki.redirect_uri));
        server.stop().await;
    }
}

#[tokio::test]
async fn prompt_and_max_age() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        add_user(&server, "alice").await;
        let app = add_client(&server, "App", false, false).await;
        let p = pkce();
        let browser = Browser::new();

        // prompt=none without a session: login_required at the redirect URI.
        let res = browser.get(&authorize_url(&server, &app, &p, &[("prompt", "none")])).await;
        let to = location(&res);
        assert!(to.starts_with(&app.redirect_uri));
        assert_eq!(query_param(&to, "error").as_deref(), Some("login_required"));
        assert_eq!(query_param(&to, "state").as_deref(), Some("st-123 &odd"));
        assert_eq!(query_param(&to, "iss").as_deref(), Some(server.base.as_str()));

        // Signed in, but no consent yet: prompt=none gives consent_required.
        let login = browser.get(&authorize_url(&server, &app, &p, &[])).await;
        let page = browser.get(&absolute(&server, &location(&login))).await.text().await.unwrap();
        let res = browser
            .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", "alice"), ("password", PASSWORD)])
            .await;
        let consent_url = absolute(&server, &location(&browser.get(&absolute(&server, &location(&res))).await));
        assert!(consent_url.contains("/consent?req="), "{consent_url}");
        let res = browser.get(&authorize_url(&server, &app, &p, &[("prompt", "none")])).await;
        assert_eq!(query_param(&location(&res), "error").as_deref(), Some("consent_required"), "{backend:?}");

        // Deny: access_denied back at the client.
        let page = browser.get(&consent_url).await.text().await.unwrap();
        assert!(page.contains("value=\"allow\"") && page.contains("value=\"deny\"") && page.contains("name=\"decision\""));
        let res = browser.post_form(&server.url("/consent"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("decision", "deny")]).await;
        assert_eq!(query_param(&location(&res), "error").as_deref(), Some("access_denied"));

        // Allow once; then prompt=none succeeds silently.
        let res = browser.get(&authorize_url(&server, &app, &p, &[])).await;
        let callback = follow_to_callback(&browser, &server, absolute(&server, &location(&res))).await;
        assert!(query_param(&callback, "code").is_some());
        let res = browser.get(&authorize_url(&server, &app, &p, &[("prompt", "none")])).await;
        assert!(query_param(&location(&res), "code").is_some(), "{backend:?}");

        // prompt=login and an exceeded max_age force a new login; a fresh one satisfies them.
        let res = browser.get(&authorize_url(&server, &app, &p, &[("prompt", "login")])).await;
        assert!(location(&res).starts_with("/login?req="));
        let res = browser.get(&authorize_url(&server, &app, &p, &[("max_age", "3600")])).await;
        assert!(query_param(&location(&res), "code").is_some(), "recent login satisfies max_age");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let res = browser.get(&authorize_url(&server, &app, &p, &[("max_age", "0")])).await;
        assert!(location(&res).starts_with("/login?req="), "max_age exceeded");
        let callback = sign_in(&browser, &server, &authorize_url(&server, &app, &p, &[("prompt", "login")]), "alice").await;
        assert!(query_param(&callback, "code").is_some(), "no loop after a fresh login");

        // prompt=consent shows the consent page again.
        let res = browser.get(&authorize_url(&server, &app, &p, &[("prompt", "consent")])).await;
        assert!(location(&res).starts_with("/consent?req="));
        server.stop().await;
    }
}

#[tokio::test]
async fn form_post_response_mode() {
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let p = pkce();
    let browser = Browser::new();
    sign_in(&browser, &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    let res = browser.get(&authorize_url(&server, &app, &p, &[("response_mode", "form_post")])).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains(&format!("action=\"{}\"", app.redirect_uri)), "{page}");
    assert!(!hidden(&page, "code").is_empty());
    assert_eq!(hidden(&page, "iss"), server.base);
    assert_eq!(hidden(&page, "state"), "st-123 &#38;odd", "escaped by askama");
    assert!(page.contains("src=\"/static/form_post.js\"") && !page.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn a_login_on_one_node_is_a_session_on_another() {
    if !backends().contains(&Backend::External) {
        eprintln!("skipped: needs PostgreSQL and Redis");
        return;
    }
    let a = TestServer::start(Backend::External).await;
    let mut config_b = (*a.state.config).clone();
    config_b.kek = a.state.config.kek.clone();
    // Same database, same Redis keyspace: a second node of one cluster.
    let b = TestServer::start_node(config_b, std::sync::Arc::new(sesame::clock::SystemClock), None, Some(a.redis_prefix.clone())).await;
    add_user(&a, "alice").await;
    let app = add_client(&a, "App", true, false).await;
    let browser = Browser::new();
    let p = pkce();
    sign_in(&browser, &a, &authorize_url(&a, &app, &p, &[]), "alice").await;
    let res = browser.get(&authorize_url(&b, &app, &p, &[])).await;
    let to = location(&res);
    assert!(query_param(&to, "code").is_some(), "node B did not see node A's session: {to}");
    let res = redeem(&b, &app, &query_param(&to, "code").unwrap(), &p.verifier).await;
    assert_eq!(res.status(), 200);
}
