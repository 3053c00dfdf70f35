//! A sign-in belongs to the browser that started it and to the user who consented: a forwarded
//! link or a cross-site form cannot finish someone else's (RFC 6749 §10.12, OIDC Core §3.1.2.4).

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_forwarded_resume_link_does_not_bypass_consent", a_forwarded_resume_link_does_not_bypass_consent)
        .each_backend("a_cross_site_login_post_does_not_sign_the_victim_in", a_cross_site_login_post_does_not_sign_the_victim_in);
}

async fn refused_as_other_browser(res: reqwest::Response, step: &str) {
    assert_eq!(res.status(), 400, "{step}: the victim's browser went on with the attacker's request");
    assert!(res.headers().get("location").is_none(), "{step}: redirected");
    assert!(error_page_message(res).await.contains("started in another browser"), "{step}");
}

/// The attacker consents to their own client's request for themselves, stops before the final
/// redirect, and sends the victim the resume link: the victim's browser must not complete it.
async fn a_forwarded_resume_link_does_not_bypass_consent(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    add_user(&server, "mallory").await;
    let portal = add_client(&server, "Portal", true, false).await;
    let evil = add_client(&server, "Evil", false, false).await;

    // The victim has an SSO session (signed in to another app).
    let victim = Browser::new();
    let callback = sign_in(&victim, &server, &authorize_url(&server, &portal, &pkce(), &[]), "alice").await;
    assert!(query_param(&callback, "code").is_some());

    // The attacker runs the flow for their own client up to the consent answer.
    let attacker = Browser::new();
    let res = attacker.get(&authorize_url(&server, &evil, &pkce(), &[])).await;
    let page = attacker.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let res = attacker
        .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", "mallory"), ("password", PASSWORD)])
        .await;
    let res = attacker.get(&absolute(&server, &location(&res))).await;
    let consent_url = absolute(&server, &location(&res));
    assert!(consent_url.contains("/consent?req="), "{consent_url}");
    let page = attacker.get(&consent_url).await.text().await.unwrap();
    let (req, csrf) = (hidden(&page, "req"), hidden(&page, "csrf"));
    let res = attacker.post_form(&server.url("/consent"), &[("req", &req), ("csrf", &csrf), ("decision", "allow")]).await;
    let resume = absolute(&server, &location(&res));
    assert!(resume.contains("/authorize/resume?req="), "{resume}");

    // Every step of that request, from the victim's browser, is refused.
    refused_as_other_browser(victim.get(&resume).await, "resume").await;
    refused_as_other_browser(victim.get(&server.url(&format!("/consent?req={req}"))).await, "consent page").await;
    refused_as_other_browser(victim.post_form(&server.url("/consent"), &[("req", &req), ("csrf", &csrf), ("decision", "allow")]).await, "consent answer").await;
    refused_as_other_browser(victim.get(&server.url(&format!("/login?req={req}"))).await, "login page").await;

    // The attacker's own browser still finishes its own request, for the attacker only.
    let callback = follow_to_callback(&attacker, &server, resume).await;
    assert!(callback.starts_with(&evil.redirect_uri) && query_param(&callback, "code").is_some(), "{callback}");
}

/// Login CSRF: the attacker starts a sign-in, then makes the victim's browser post the
/// attacker's credentials with it; the victim must not end up signed in as the attacker.
async fn a_cross_site_login_post_does_not_sign_the_victim_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "mallory").await;
    let app = add_client(&server, "App", true, false).await;
    let attacker = Browser::new();
    let res = attacker.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let page = attacker.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let form = [("req", hidden(&page, "req")), ("csrf", hidden(&page, "csrf")), ("username", "mallory".to_string()), ("password", PASSWORD.to_string())];

    let victim = Browser::new();
    let res = victim.http.post(server.url("/login")).form(&form).send().await.unwrap();
    assert!(res.headers().get("set-cookie").is_none(), "the victim's browser got a session");
    refused_as_other_browser(res, "cross-site login").await;
    // The victim's browser is not signed in: a prompt=none request is answered login_required.
    let res = victim.get(&authorize_url(&server, &app, &pkce(), &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"));
}
