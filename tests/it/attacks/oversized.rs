//! Unauthenticated memory exhaustion: nothing an anonymous caller sends is stored or read
//! beyond a documented bound.

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("an_oversized_authorization_request_is_refused_before_it_is_stored", an_oversized_authorization_request_is_refused_before_it_is_stored)
        .each_backend("bodies_beyond_the_limit_are_refused", bodies_beyond_the_limit_are_refused)
        .each_backend("an_oversized_header_block_gets_431", an_oversized_header_block_gets_431);
}

async fn an_oversized_authorization_request_is_refused_before_it_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let app = add_client(&server, "App", false, false).await;
    let browser = Browser::new();
    let base = authorize_url(&server, &app, &pkce(), &[]);
    // Each bounded parameter, one byte over: answered at the (proven) redirect URI, never stored
    // (a stored request is one that redirects to the login page).
    for (name, limit) in [("state", 1024), ("nonce", 512), ("login_hint", 256), ("prompt", 256), ("ui_locales", 256)] {
        let res = browser.get(&set_param(&base, name, &"x".repeat(limit + 1))).await;
        assert_eq!(res.status(), 303, "{name}");
        let to = location(&res);
        assert!(to.starts_with(&app.redirect_uri), "{name}: {to}");
        assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{name}");
        assert_eq!(query_param(&to, "error_description"), Some(format!("`{name}` is too long")));
        assert_eq!(query_param(&to, "state").is_some(), name != "state", "{name}: an oversized state is not echoed");
    }
    // Within the limits the same request is stored and goes on to the login page.
    let res = browser.get(&set_param(&base, "state", &"x".repeat(1024))).await;
    assert!(location(&res).starts_with("/login?req="), "the limit itself is accepted");
    // The whole request beyond 8 KiB: refused before it is even parsed, as a page.
    let res = browser.get(&format!("{base}&pad={}", "x".repeat(8 * 1024))).await;
    assert_eq!(res.status(), 400);
    assert_eq!(error_page_message(res).await, "The authorization request is too large.");
    let body = format!("client_id={}&pad={}", app.id, "x".repeat(9 * 1024));
    let res = browser.http.post(server.url("/authorize")).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

async fn bodies_beyond_the_limit_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/token", "/introspect", "/revoke", "/userinfo", "/login", "/consent", "/admin/api-keys/test"] {
        let res = http()
            .post(server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("a={}", "x".repeat(65 * 1024)))
            .send()
            .await
            .unwrap();
        assert!(matches!(res.status().as_u16(), 400 | 401 | 413), "{path}: {}", res.status());
        assert_ne!(res.status(), 200, "{path}");
    }
    let res = http().post(server.url("/token")).header("content-type", "application/x-www-form-urlencoded").body(format!("grant_type=client_credentials&a={}", "x".repeat(65 * 1024))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!((body["error"].as_str(), body["error_description"].as_str()), (Some("invalid_request"), Some("request body too large")));
}

/// An oversized header block is refused by the HTTP layer with 431, before any handler runs.
async fn an_oversized_header_block_gets_431(backend: Backend) {
    let server = TestServer::start(backend).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // Raw HTTP/1.1: a client library would refuse to send a header this large.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let big = "x".repeat(1024 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Padding: {big}\r\n\r\n");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer)).await.expect("an answer").unwrap_or(0);
    let head = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
}
