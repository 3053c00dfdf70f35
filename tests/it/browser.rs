//! A real headless Chromium through the real login page: sign in for one client, reach a
//! second client with no password prompt, sign out, and be asked to sign in again.

use fantoccini::Locator;
use sesame::admin::clients::{self, NewClient};

use crate::support::chromium::{start_app, start_browser, wait_for_url};
use crate::support::harness::{Need, Tests};
use crate::support::sso::{add_user, pkce, PASSWORD};
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend_needing(&[Need::Chromium], "chromium_signs_in_once_reaches_a_second_app_then_signs_out", chromium_signs_in_once_reaches_a_second_app_then_signs_out)
        .test_needing(&[Need::Chromium], "chromium_sets_up_an_authenticator_app_where_a_client_requires_one", chromium_sets_up_an_authenticator_app_where_a_client_requires_one);
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


async fn chromium_signs_in_once_reaches_a_second_app_then_signs_out(backend: Backend) {
    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;
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
    let one = clients::add(server.state.durable.as_ref(), &register("App One", "one", false), "test", 0).await.unwrap().client;
    let two = clients::add(server.state.durable.as_ref(), &register("App Two", "two", true), "test", 0).await.unwrap().client;

    // App One: the login page, then the consent page, then the callback with a code.
    browser.goto(&authorize(&server, &one.id, &one.redirect_uris[0])).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    let body = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(body.contains("App One"), "{body}");
    if backend == Backend::Embedded {
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
    let received = browser.find(Locator::Css("#received")).await.unwrap().text().await.unwrap();
    assert!(received.contains("code=") && received.contains("state=xyz"), "the app received {received}");

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
    browser.close().await.unwrap();
}

/// A client that requires a second factor, a user without one: the enrolment page (QR code,
/// key), the first code typed in, the recovery codes, then the application gets its code. The
/// pages need no JavaScript.
async fn chromium_sets_up_an_authenticator_app_where_a_client_requires_one() {
    use sesame::clock::{Clock, SystemClock};
    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;
    let server = TestServer::start(Backend::Embedded).await;
    add_user(&server, "alice").await;
    let app = start_app().await;
    let mut spec = NewClient::new("Payroll");
    spec.redirect_uris = vec![format!("{app}/one/callback")];
    spec.first_party = true;
    spec.require_mfa = true;
    spec.grant_types = vec!["authorization_code".into()];
    let payroll = clients::add(server.state.durable.as_ref(), &spec, "test", 0).await.unwrap().client;

    browser.goto(&authorize(&server, &payroll.id, &payroll.redirect_uris[0])).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    browser.find(Locator::Css("input[name=username]")).await.unwrap().send_keys("alice").await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_url(&browser, &server.url("/login/enrol")).await;
    assert!(browser.find(Locator::Css(".qr svg")).await.is_ok(), "the QR code is drawn");
    let png = browser.screenshot().await.unwrap();
    let _ = std::fs::write(std::env::temp_dir().join("sesame-enrol.png"), png);
    let secret = browser.find(Locator::Css("#totp-secret")).await.unwrap().text().await.unwrap();
    let bytes = totp_rs::Secret::try_from_base32(secret.trim()).unwrap().as_bytes().to_vec();
    let code = sesame::mfa::totp::code_at(&bytes, SystemClock.now()).unwrap();
    browser.find(Locator::Css("input[name=code]")).await.unwrap().send_keys(&code).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    // The answer to the form's POST: wait for it to be drawn before reading it.
    browser.wait().at_most(std::time::Duration::from_secs(10)).for_element(Locator::Css("#recovery-codes")).await.unwrap();
    let codes = browser.find_all(Locator::Css("#recovery-codes code")).await.unwrap();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    browser.find(Locator::Css("#continue")).await.unwrap().click().await.unwrap();
    let callback = wait_for_url(&browser, &payroll.redirect_uris[0]).await;
    assert!(callback.contains("code="), "{callback}");
    server.stop().await;
    browser.close().await.unwrap();
}
