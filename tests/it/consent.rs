//! The consent page: what it asks, CSRF, deny, and allow remembered per user and client (and
//! widened, never replaced, when a client later asks for more).

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("consent_is_asked_remembered_and_csrf_protected", consent_is_asked_remembered_and_csrf_protected);
}

/// Follows sesame's redirects from `url` until the consent page; returns its address.
async fn consent_url(browser: &Browser, server: &TestServer, url: &str) -> String {
    let mut url = url.to_string();
    for _ in 0..4 {
        if url.contains("/consent?req=") {
            return url;
        }
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 303, "unexpected {} at {url}", res.status());
        url = absolute(server, &location(&res));
    }
    panic!("no consent page; ended at {url}");
}

async fn consent_is_asked_remembered_and_csrf_protected(backend: Backend) {
    let server = TestServer::start(backend).await;
    let sub = add_user(&server, "alice").await;
    let app = add_client(&server, "Partner", false, false).await;
    let browser = Browser::new();
    let granted = || async { server.state.durable.consented_scopes(&sub, &app.id).await.unwrap() };

    // Sign in; the consent page names the client, the user and each scope.
    let authorize = authorize_url(&server, &app, &pkce(), &[("scope", "openid profile")]);
    let res = browser.get(&authorize).await;
    let page = browser.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let res = browser
        .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", "alice"), ("password", PASSWORD)])
        .await;
    let url = consent_url(&browser, &server, &absolute(&server, &location(&res))).await;
    let page = browser.get(&url).await.text().await.unwrap();
    assert!(page.contains("<strong>Partner</strong>"), "{page}");
    assert!(page.contains("Signed in as alice."));
    assert!(page.contains("see your name and username") && page.contains("confirm who you are"));
    assert!(!page.contains("see your email address"), "only the requested scopes are listed");
    let (req, csrf) = (hidden(&page, "req"), hidden(&page, "csrf"));

    // A forged form and a decision that is neither: refused, nothing remembered.
    let res = browser.post_form(&server.url("/consent"), &[("req", &req), ("csrf", "forged"), ("decision", "allow")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_page_message(res).await, "The consent form was not sent by this page. Go back and try again.");
    let res = browser.post_form(&server.url("/consent"), &[("req", &req), ("csrf", &csrf), ("decision", "maybe")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_page_message(res).await, "Choose allow or deny.");
    assert!(granted().await.is_empty(), "{backend:?}: a refused form stored a consent");

    // Deny: access_denied at the client, nothing remembered, and the request is spent.
    let res = browser.post_form(&server.url("/consent"), &[("req", &req), ("csrf", &csrf), ("decision", "deny")]).await;
    let to = location(&res);
    assert!(to.starts_with(&app.redirect_uri), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-123 &odd"));
    assert!(granted().await.is_empty());
    let res = browser.post_form(&server.url("/consent"), &[("req", &req), ("csrf", &csrf), ("decision", "allow")]).await;
    assert_eq!(res.status(), 400, "a denied request cannot be allowed afterwards");
    assert!(granted().await.is_empty());

    // Allow: remembered, and the next request for the same scopes skips the page.
    let res = browser.get(&authorize).await;
    let url = consent_url(&browser, &server, &absolute(&server, &location(&res))).await;
    let page = browser.get(&url).await.text().await.unwrap();
    let res = browser.post_form(&server.url("/consent"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("decision", "allow")]).await;
    let callback = follow_to_callback(&browser, &server, absolute(&server, &location(&res))).await;
    assert!(query_param(&callback, "code").is_some(), "{callback}");
    assert_eq!(granted().await, vec!["openid".to_string(), "profile".to_string()], "{backend:?}");
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[("scope", "openid profile")])).await;
    assert!(query_param(&location(&res), "code").is_some(), "{backend:?}: consent was asked again");

    // Asking for more asks again, for the new scope; allowing it adds to what was granted.
    let res = browser.get(&authorize_url(&server, &app, &pkce(), &[("scope", "openid email")])).await;
    let url = consent_url(&browser, &server, &absolute(&server, &location(&res))).await;
    let page = browser.get(&url).await.text().await.unwrap();
    assert!(page.contains("see your email address"));
    let res = browser.post_form(&server.url("/consent"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("decision", "allow")]).await;
    follow_to_callback(&browser, &server, absolute(&server, &location(&res))).await;
    assert_eq!(granted().await, vec!["openid".to_string(), "profile".to_string(), "email".to_string()]);
}
