//! A real headless Chromium through the real login page: sign in for one client, reach a
//! second client with no password prompt, sign out, and be asked to sign in again.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::extract::RawQuery;
use axum::routing::get;
use fantoccini::{Client as WebDriver, ClientBuilder, Locator};
use sesame::admin::clients::{self, NewClient};

use crate::sso_support::{add_user, pkce, PASSWORD};
use crate::support::{backends, TestServer};

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_binary(env: &str, names: &[&str]) -> Option<String> {
    if let Ok(path) = std::env::var(env) {
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file()).map(|p| p.display().to_string())
}

/// Starts chromedriver and a headless Chromium session, or says why it cannot.
pub async fn start_browser(profile: &std::path::Path) -> Option<(Driver, WebDriver)> {
    // The test binary links two rustls providers (ring via reqwest, aws-lc via fantoccini): pick one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (Some(driver_bin), Some(chromium)) = (
        find_binary("SESAME_TEST_CHROMEDRIVER", &["chromedriver"]),
        find_binary("SESAME_TEST_CHROMIUM", &["chromium", "chromium-browser"]),
    ) else {
        assert!(std::env::var("CI").is_err(), "CI must provide chromium and chromedriver");
        eprintln!("skipped: chromium and chromedriver are not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver_bin).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--window-size=1000,800",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = String::new();
    for _ in 0..100 {
        match ClientBuilder::rustls().expect("tls").capabilities(caps.clone()).connect(&url).await {
            Ok(client) => return Some((driver, client)),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start: {last_error}");
}

/// A stand-in relying party: its callback pages show what they received.
async fn start_app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let show = |RawQuery(q): RawQuery| async move { axum::response::Html(format!("<p id=\"received\">{}</p>", q.unwrap_or_default())) };
    let app = axum::Router::new().route("/one/callback", get(show)).route("/two/callback", get(show)).route("/bye", get(|| async { "signed out" }));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    base
}

pub async fn wait_for_url(browser: &WebDriver, prefix: &str) -> String {
    for _ in 0..100 {
        let url = browser.current_url().await.unwrap().to_string();
        if url.starts_with(prefix) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never reached {prefix}; at {}", browser.current_url().await.unwrap());
}

fn authorize(server: &TestServer, client_id: &str, redirect_uri: &str) -> String {
    let p = pkce();
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile")
        .append_pair("state", "xyz")
        .append_pair("code_challenge", &p.challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

#[tokio::test]
async fn chromium_signs_in_once_reaches_a_second_app_then_signs_out() {
    let profile = tempfile::tempdir().unwrap();
    let Some((_driver, browser)) = start_browser(profile.path()).await else { return };
    for backend in backends() {
        let server = TestServer::start(backend).await;
        add_user(&server, "alice").await;
        let app = start_app().await;
        let register = |name: &str, path: &str, first_party: bool| {
            let mut spec = NewClient::new(name);
            spec.redirect_uris = vec![format!("{app}/{path}/callback")];
            spec.post_logout_redirect_uris = vec![format!("{app}/bye")];
            spec.first_party = first_party;
            spec.grant_types = vec!["authorization_code".into()];
            spec
        };
        let one = clients::add(server.state.durable.as_ref(), &register("App One", "one", false), 0).await.unwrap().client;
        let two = clients::add(server.state.durable.as_ref(), &register("App Two", "two", true), 0).await.unwrap().client;

        // App One: the login page, then the consent page, then the callback with a code.
        browser.goto(&authorize(&server, &one.id, &one.redirect_uris[0])).await.unwrap();
        wait_for_url(&browser, &server.url("/login")).await;
        let body = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(body.contains("App One"), "{body}");
        if backend == crate::support::Backend::Embedded {
            let png = browser.screenshot().await.unwrap();
            let _ = std::fs::write(std::env::temp_dir().join("sesame-login.png"), png);
        }
        browser.find(Locator::Css("input[name=username]")).await.unwrap().send_keys("alice").await.unwrap();
        browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
        browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
        wait_for_url(&browser, &server.url("/consent")).await;
        browser.find(Locator::Css("button[name=decision][value=allow]")).await.unwrap().click().await.unwrap();
        let callback = wait_for_url(&browser, &one.redirect_uris[0]).await;
        assert!(callback.contains("code=") && callback.contains("state=xyz"), "{callback}");

        // App Two: single sign-on, no password prompt.
        browser.goto(&authorize(&server, &two.id, &two.redirect_uris[0])).await.unwrap();
        let callback = wait_for_url(&browser, &two.redirect_uris[0]).await;
        assert!(callback.contains("code="), "{backend:?}: {callback}");

        // Sign out (confirmation page: the request carries no ID token), then sign-in is asked again.
        let logout = format!("{}?client_id={}&post_logout_redirect_uri={}", server.url("/logout"), one.id, url::form_urlencoded::byte_serialize(format!("{app}/bye").as_bytes()).collect::<String>());
        browser.goto(&logout).await.unwrap();
        browser.find(Locator::Css("button[name=decision][value=logout]")).await.unwrap().click().await.unwrap();
        wait_for_url(&browser, &format!("{app}/bye")).await;
        browser.goto(&authorize(&server, &two.id, &two.redirect_uris[0])).await.unwrap();
        wait_for_url(&browser, &server.url("/login")).await;
        assert!(browser.find(Locator::Css("input[name=password]")).await.is_ok());
        server.stop().await;
    }
    browser.close().await.unwrap();
}
