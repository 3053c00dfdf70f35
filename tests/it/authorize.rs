//! The authorization endpoint's refusals: a page before the client is proven, a redirect after.

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test("unproven_client_or_redirect_uri_gets_a_page_never_a_redirect", unproven_client_or_redirect_uri_gets_a_page_never_a_redirect)
        .each_backend("invalid_requests_are_sent_back_to_a_proven_redirect_uri", invalid_requests_are_sent_back_to_a_proven_redirect_uri)
        .test("a_client_with_several_redirect_uris_must_name_one", a_client_with_several_redirect_uris_must_name_one);
}

async fn unproven_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let server = TestServer::start(Backend::Embedded).await;
    let app = add_client(&server, "App", false, false).await;
    let p = pkce();
    let browser = Browser::new();
    let base = authorize_url(&server, &app, &p, &[]);
    let cb = app.redirect_uri.clone();
    for (name, url) in [
        ("unknown client", set_param(&base, "client_id", "nope")),
        ("no client", set_param(&base, "client_id", "")),
        ("extra path", set_param(&base, "redirect_uri", &format!("{cb}/x"))),
        ("extra query", set_param(&base, "redirect_uri", &format!("{cb}?x=1"))),
        ("other port", set_param(&base, "redirect_uri", &cb.replace(":9/", ":10/"))),
        ("https for http", set_param(&base, "redirect_uri", &cb.replace("http://", "https://"))),
        ("trailing slash", set_param(&base, "redirect_uri", &format!("{cb}/"))),
        ("foreign", set_param(&base, "redirect_uri", "https://evil.example.com/cb")),
        ("duplicate parameter", format!("{base}&client_id={}", app.id)),
    ] {
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 400, "{name}");
        assert!(res.headers().get("location").is_none(), "{name}: redirected to an unproven URI");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{name}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
}

async fn invalid_requests_are_sent_back_to_a_proven_redirect_uri(backend: Backend) {
    {
        let server = TestServer::start(backend).await;
        let app = add_client(&server, "App", false, false).await;
        let spa = add_client(&server, "Spa", false, true).await;
        let p = pkce();
        let browser = Browser::new();
        let base = authorize_url(&server, &app, &p, &[]);
        for (name, url, error) in [
            ("response_type token", set_param(&base, "response_type", "token"), "unsupported_response_type"),
            ("no response_type", set_param(&base, "response_type", ""), "invalid_request"),
            ("scope not allowed", set_param(&base, "scope", "openid admin"), "invalid_scope"),
            ("plain PKCE", set_param(&base, "code_challenge_method", "plain"), "invalid_request"),
            ("PKCE without method", set_param(&base, "code_challenge_method", ""), "invalid_request"),
            ("public client without PKCE", set_param(&set_param(&authorize_url(&server, &spa, &p, &[]), "code_challenge", ""), "code_challenge_method", ""), "invalid_request"),
            ("prompt none+login", set_param(&base, "prompt", "none login"), "invalid_request"),
            ("bad max_age", set_param(&base, "max_age", "soon"), "invalid_request"),
            ("request object", set_param(&base, "request", "eyJ..."), "request_not_supported"),
        ] {
            let res = browser.get(&url).await;
            assert_eq!(res.status(), 303, "{backend:?} {name}");
            let to = location(&res);
            assert!(to.starts_with("http://127.0.0.1:9/"), "{name}: {to}");
            assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{name}");
            assert!(query_param(&to, "error_description").is_some());
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
}

async fn a_client_with_several_redirect_uris_must_name_one() {
    let server = TestServer::start(Backend::Embedded).await;
    let mut spec = sesame::admin::clients::NewClient::new("Multi");
    spec.redirect_uris = vec!["http://127.0.0.1:9/a".into(), "http://127.0.0.1:9/b".into()];
    let created = sesame::admin::clients::add(server.state.durable.as_ref(), &spec, 0).await.unwrap();
    let url = server.url(&format!("/authorize?response_type=code&client_id={}&scope=openid", created.client.id));
    let res = Browser::new().get(&url).await;
    assert_eq!(res.status(), 400);
}
