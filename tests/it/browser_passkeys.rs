//! Passkeys in a real headless Chromium with chromedriver's virtual authenticator (a platform
//! authenticator that keeps discoverable credentials and verifies its user), driving the pages
//! and `/static/passkey.js` as a person would: register a passkey on the account page, then sign
//! in with it as the second step after the password, then passwordless from the login page; a
//! passwordless assertion is accepted once.

use fantoccini::{Client as WebDriver, Locator};
use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};
use sesame::oauth::acr::ACR_MFA;

use crate::support::chromium::{add_virtual_authenticator, start_app, start_browser, virtual_credentials, wait_for_url};
use crate::support::harness::{Need, Tests};
use crate::support::sso::{add_user, authorize_url, id_claims, pkce, redeem, Pkce, TestClient, PASSWORD};
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend_needing(&[Need::Chromium], "chromium_registers_a_passkey_then_signs_in_with_it_after_the_password_and_without_one", chromium_registers_a_passkey_then_signs_in_with_it_after_the_password_and_without_one);
}

fn authorize(server: &TestServer, client: &TestClient, p: &Pkce) -> String {
    authorize_url(server, client, p, &[("scope", "openid profile"), ("prompt", "login")])
}

async fn click(browser: &WebDriver, css: &str) {
    let found = browser.wait().at_most(std::time::Duration::from_secs(10)).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
    found.click().await.unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

async fn type_password(browser: &WebDriver) {
    browser.find(Locator::Css("input[name=username]")).await.unwrap().send_keys("alice").await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(browser, "button[type=submit]").await;
}

/// Waits for the callback, redeems its code; the ID token's claims.
async fn callback_claims(browser: &WebDriver, server: &TestServer, client: &TestClient, p: &Pkce) -> Value {
    let callback = url::Url::parse(&wait_for_url(browser, &client.redirect_uri).await).unwrap();
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap_or_else(|| panic!("no code in {callback}")).1.to_string();
    let res = redeem(server, client, &code, &p.verifier).await;
    assert_eq!(res.status(), 200);
    id_claims(&res.json().await.unwrap())
}

fn amr(claims: &Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).unwrap()
}

async fn chromium_registers_a_passkey_then_signs_in_with_it_after_the_password_and_without_one(backend: Backend) {
    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;
    let authenticator = add_virtual_authenticator(&browser).await;
    let server = TestServer::start_with(backend, |c| c.issuer = "http://localhost".into()).await;
    add_user(&server, "alice").await;
    let app = start_app().await;
    let mut spec = NewClient::new("Wiki");
    spec.redirect_uris = vec![format!("{app}/one/callback")];
    spec.first_party = true;
    spec.grant_types = vec!["authorization_code".into()];
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", 0).await.unwrap();
    let wiki = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() };

    // A password sign-in, then the account page registers a passkey through passkey.js.
    let p = pkce();
    browser.goto(&authorize(&server, &wiki, &p)).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    type_password(&browser).await;
    let claims = callback_claims(&browser, &server, &wiki, &p).await;
    assert_eq!(amr(&claims), ["pwd"]);
    browser.goto(&server.url("/account")).await.unwrap();
    browser.find(Locator::Css("#passkey-name")).await.unwrap().send_keys("Laptop").await.unwrap();
    click(&browser, "#add-passkey").await;
    // The page reloads once the server has the passkey.
    let listed = browser.wait().at_most(std::time::Duration::from_secs(10)).for_element(Locator::Css("li.factor[data-kind=passkey]")).await;
    let status = match browser.find(Locator::Css("#passkey-status")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    assert!(listed.is_ok(), "the account page lists the passkey; the script said: {status}");
    assert!(listed.unwrap().text().await.unwrap().contains("Laptop"));
    let held = virtual_credentials(&browser, &authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], json!(true), "registration asks for a discoverable credential");

    // The second step: password, then "Use a passkey" instead of a code.
    let p = pkce();
    browser.goto(&authorize(&server, &wiki, &p)).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    type_password(&browser).await;
    wait_for_url(&browser, &server.url("/login/factor")).await;
    click(&browser, "#use-passkey").await;
    let claims = callback_claims(&browser, &server, &wiki, &p).await;
    let methods = amr(&claims);
    for m in ["pwd", "hwk", "user", "mfa"] {
        assert!(methods.iter().any(|x| x == m), "{m} in {methods:?}");
    }
    assert_eq!(claims["acr"], ACR_MFA);

    // Passwordless: the login page's passkey button, no password typed.
    let p = pkce();
    browser.goto(&authorize(&server, &wiki, &p)).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    click(&browser, "#use-passkey").await;
    let claims = callback_claims(&browser, &server, &wiki, &p).await;
    let methods = amr(&claims);
    assert!(!methods.iter().any(|x| x == "pwd"), "no password was used: {methods:?}");
    for m in ["hwk", "user", "mfa"] {
        assert!(methods.iter().any(|x| x == m), "{m} in {methods:?}");
    }
    assert_eq!(claims["acr"], ACR_MFA);
    let sign_count = virtual_credentials(&browser, &authenticator).await[0]["signCount"].as_u64().unwrap();
    assert!(sign_count >= 2, "each sign-in moved the counter: {sign_count}");

    // The same assertion posted twice: the ceremony is taken by the first finish.
    let p = pkce();
    browser.goto(&authorize(&server, &wiki, &p)).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    let statuses = browser.execute_async(REPLAY_SCRIPT, vec![]).await.unwrap();
    assert_eq!(statuses, json!([200, 401]), "a passwordless assertion is accepted once");
    let events = server.state.durable.recent_audit(None, 50).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "login.passkey" && e.result != "ok" && e.reason.as_deref() == Some("no_ceremony")), "the replay is audited");
    server.stop().await;
    browser.close().await.unwrap();
}

/// In the login page: one passwordless ceremony whose assertion is posted twice; resolves with
/// the two statuses. Uses the page's own button data and the same encoding as passkey.js.
const REPLAY_SCRIPT: &str = r#"
const done = arguments[arguments.length - 1];
const button = document.getElementById("use-passkey");
const req = button.dataset.req, csrf = button.dataset.csrf;
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
const post = (url, body) => fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
(async () => {
  const options = await (await post(button.dataset.begin + "?req=" + encodeURIComponent(req), {})).json();
  options.publicKey.challenge = unb64(options.publicKey.challenge);
  const cred = await navigator.credentials.get({ publicKey: options.publicKey });
  const credential = { id: cred.id, rawId: b64(cred.rawId), type: cred.type, extensions: {}, response: {
    authenticatorData: b64(cred.response.authenticatorData), clientDataJSON: b64(cred.response.clientDataJSON),
    signature: b64(cred.response.signature), userHandle: b64(cred.response.userHandle) } };
  const first = await post(button.dataset.finish, { req, credential });
  const second = await post(button.dataset.finish, { req, credential });
  done([first.status, second.status]);
})().catch((e) => done(String(e)));
"#;
