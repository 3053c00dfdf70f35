//! The authorization endpoint: refusals (a page before the client is proven, a redirect after),
//! `prompt` and `max_age` on an injected clock, and the `form_post` response mode.

use std::sync::Arc;

use sesame::clock::{Clock, ManualClock, SystemClock};

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test("unproven_client_or_redirect_uri_gets_a_page_never_a_redirect", unproven_client_or_redirect_uri_gets_a_page_never_a_redirect)
        .each_backend("invalid_requests_are_sent_back_to_a_proven_redirect_uri", invalid_requests_are_sent_back_to_a_proven_redirect_uri)
        .test("a_client_with_several_redirect_uris_must_name_one", a_client_with_several_redirect_uris_must_name_one)
        .each_backend("prompt_and_max_age", prompt_and_max_age)
        .test("form_post_response_mode", form_post_response_mode);
}

async fn unproven_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let server = TestServer::start(Backend::Embedded).await;
    let app = add_client(&server, "App", false, false).await;
    let p = pkce();
    let browser = Browser::new();
    let base = authorize_url(&server, &app, &p, &[]);
    let cb = app.redirect_uri.clone();
    let not_registered = "the redirect_uri is not registered for this client";
    for (name, url, says) in [
        ("unknown client", set_param(&base, "client_id", "nope"), "The application that sent you here is not registered."),
        ("no client", set_param(&base, "client_id", ""), "The request does not name an application (client_id)."),
        ("extra path", set_param(&base, "redirect_uri", &format!("{cb}/x")), not_registered),
        ("extra query", set_param(&base, "redirect_uri", &format!("{cb}?x=1")), not_registered),
        ("other port", set_param(&base, "redirect_uri", &cb.replace(":9/", ":10/")), not_registered),
        ("https for http", set_param(&base, "redirect_uri", &cb.replace("http://", "https://")), not_registered),
        ("trailing slash", set_param(&base, "redirect_uri", &format!("{cb}/")), not_registered),
        ("foreign", set_param(&base, "redirect_uri", "https://evil.example.com/cb"), not_registered),
        ("duplicate parameter", format!("{base}&client_id={}", app.id), "parameter `client_id` given more than once"),
    ] {
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 400, "{name}");
        assert!(res.headers().get("location").is_none(), "{name}: redirected to an unproven URI");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{name}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        let message = error_page_message(res).await;
        assert_eq!(message, says, "{name}: the page must say what is wrong");
    }
    // A POST must be a form.
    let res = browser.http.post(server.url("/authorize")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_page_message(res).await, "The authorization request must be a form post.");
}

async fn invalid_requests_are_sent_back_to_a_proven_redirect_uri(backend: Backend) {
    let server = TestServer::start(backend).await;
    let app = add_client(&server, "App", false, false).await;
    let spa = add_client(&server, "Spa", false, true).await;
    let p = pkce();
    let browser = Browser::new();
    let base = authorize_url(&server, &app, &p, &[]);
    for (name, url, error, says) in [
        ("response_type token", set_param(&base, "response_type", "token"), "unsupported_response_type", "`token`"),
        ("no response_type", set_param(&base, "response_type", ""), "invalid_request", "response_type is required"),
        ("scope not allowed", set_param(&base, "scope", "openid admin"), "invalid_scope", "`admin`"),
        ("plain PKCE", set_param(&base, "code_challenge_method", "plain"), "invalid_request", "must be S256"),
        ("PKCE without method", set_param(&base, "code_challenge_method", ""), "invalid_request", "code_challenge_method=S256 is required"),
        (
            "public client without PKCE",
            set_param(&set_param(&authorize_url(&server, &spa, &p, &[]), "code_challenge", ""), "code_challenge_method", ""),
            "invalid_request",
            "PKCE is required",
        ),
        ("prompt none+login", set_param(&base, "prompt", "none login"), "invalid_request", "prompt=none cannot be combined"),
        ("bad max_age", set_param(&base, "max_age", "soon"), "invalid_request", "max_age"),
        ("request object", set_param(&base, "request", "eyJ..."), "request_not_supported", "request objects"),
    ] {
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 303, "{backend:?} {name}");
        let to = location(&res);
        assert!(to.starts_with("http://127.0.0.1:9/"), "{name}: {to}");
        assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{name}");
        let description = query_param(&to, "error_description").unwrap_or_else(|| panic!("{name}: no error_description in {to}"));
        assert!(description.contains(says), "{name}: the description must say what is wrong: {description}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("st-123 &odd"), "{name}");
        assert_eq!(query_param(&to, "iss").as_deref(), Some(server.base.as_str()));
    }
    // A confidential client may skip PKCE; POST works like GET.
    let no_pkce = set_param(&set_param(&base, "code_challenge", ""), "code_challenge_method", "");
    let res = browser.get(&no_pkce).await;
    assert!(location(&res).starts_with("/login?req="));
    let query = url::Url::parse(&base).unwrap().query().unwrap().to_string();
    let res = browser.http.post(server.url("/authorize")).header("content-type", "application/x-www-form-urlencoded").body(query).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login?req="));
}

async fn a_client_with_several_redirect_uris_must_name_one() {
    let server = TestServer::start(Backend::Embedded).await;
    let mut spec = sesame::admin::clients::NewClient::new("Multi");
    spec.redirect_uris = vec!["http://127.0.0.1:9/a".into(), "http://127.0.0.1:9/b".into()];
    let created = sesame::admin::clients::add(server.state.durable.as_ref(), &spec, "test", 0).await.unwrap();
    let url = server.url(&format!("/authorize?response_type=code&client_id={}&scope=openid", created.client.id));
    let res = Browser::new().get(&url).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert_eq!(error_page_message(res).await, "redirect_uri is required: the client has several registered");
    // Naming one of them is enough.
    let res = Browser::new().get(&format!("{url}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fb&code_challenge_method=S256&code_challenge={}", pkce().challenge)).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login?req="));
}

/// `prompt` and `max_age`; the server's clock is a `ManualClock`, so "the login is too old" is
/// decided by moving time, not by sleeping.
async fn prompt_and_max_age(backend: Backend) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with_clock(backend, clock.clone(), |_| {}).await;
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
    let res = browser.get(&authorize_url(&server, &app, &p, &[("max_age", "0")])).await;
    assert!(query_param(&location(&res), "code").is_some(), "a login this very second satisfies max_age=0");
    clock.advance(1);
    let res = browser.get(&authorize_url(&server, &app, &p, &[("max_age", "1")])).await;
    assert!(query_param(&location(&res), "code").is_some(), "{backend:?}: a login 1 s ago satisfies max_age=1");
    let res = browser.get(&authorize_url(&server, &app, &p, &[("max_age", "0")])).await;
    assert!(location(&res).starts_with("/login?req="), "max_age exceeded");
    let callback = sign_in(&browser, &server, &authorize_url(&server, &app, &p, &[("prompt", "login")]), "alice").await;
    assert!(query_param(&callback, "code").is_some(), "no loop after a fresh login");

    // prompt=consent shows the consent page again.
    let res = browser.get(&authorize_url(&server, &app, &p, &[("prompt", "consent")])).await;
    assert!(location(&res).starts_with("/consent?req="));
    server.stop().await;
}

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
    // The posted code is a real one: it redeems.
    let res = redeem(&server, &app, &hidden(&page, "code"), &p.verifier).await;
    assert_eq!(res.status(), 200);
}
