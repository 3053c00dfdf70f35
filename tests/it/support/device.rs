//! The device authorization grant over HTTP: a device client, the device's requests (start,
//! poll), and a scripted browser at the verification page.

use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::store::AuthMethod;

use crate::support::sso::{absolute, hidden, location, Browser, TestClient, PASSWORD};
pub use crate::support::sso::post_as;
use crate::support::{Site, TestServer};

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub struct ClientOptions {
    pub public: bool,
    pub require_mfa: bool,
    pub first_party: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { public: true, require_mfa: false, first_party: false }
    }
}

/// A client registered for the device grant (and refresh tokens), as `sesame client add
/// --grant-type urn:ietf:params:oauth:grant-type:device_code --grant-type refresh_token` would.
pub async fn add_device_client(server: &TestServer, name: &str, options: ClientOptions) -> TestClient {
    let mut spec = NewClient::new(name);
    spec.grant_types = vec![DEVICE_GRANT.into(), "refresh_token".into()];
    spec.require_mfa = options.require_mfa;
    spec.first_party = options.first_party;
    if options.public {
        spec.auth_method = AuthMethod::None;
    }
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: String::new() }
}

/// The device authorization request; asserts success and returns its answer.
pub async fn start(server: &impl Site, client: &TestClient, scope: &str) -> Value {
    let res = post_as(server, client, "/device_authorization", &[("scope", scope)]).await;
    assert_eq!(res.status(), 200, "device authorization refused");
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

/// One poll of the token endpoint: status and body.
pub async fn poll(server: &impl Site, client: &TestClient, device_code: &str) -> (u16, Value) {
    let res = post_as(server, client, "/token", &[("grant_type", DEVICE_GRANT), ("device_code", device_code)]).await;
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap())
}

/// Polls once and asserts the RFC 8628 error `expected`.
pub async fn poll_expecting(server: &impl Site, client: &TestClient, device_code: &str, expected: &str) {
    let (status, body) = poll(server, client, device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some(expected)), "{body}");
}

/// Opens `url` (the verification page, perhaps with `?user_code=`) and submits `code` from its
/// form; returns the answer to the form.
pub async fn enter_user_code(browser: &Browser, server: &impl Site, url: &str, code: &str) -> reqwest::Response {
    let page = browser.get(url).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("name=\"user_code\""), "a form with input `user_code`: {page}");
    browser.post_form(&server.url("/device"), &[("csrf", &hidden(&page, "csrf")), ("user_code", code)]).await
}

/// From the verification page (the code typed in) through the password step: where sesame sends
/// the browser next (a second factor, or consent).
pub async fn code_and_password(browser: &Browser, server: &impl Site, code: &str, username: &str) -> String {
    let res = enter_user_code(browser, server, &server.url("/device"), code).await;
    assert_eq!(res.status(), 303, "a valid code leads on to sign-in");
    let login = absolute(server, &location(&res));
    assert!(login.contains("/login?req="), "{login}");
    let page = browser.get(&login).await.text().await.unwrap();
    let res = browser
        .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", username), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), 303, "password accepted");
    let res = browser.get(&absolute(server, &location(&res))).await;
    assert_eq!(res.status(), 303);
    absolute(server, &location(&res))
}

/// Answers the consent page at `url` with `decision`; returns the consent page and the final
/// page (sesame's redirects followed).
pub async fn answer_consent(browser: &Browser, server: &impl Site, url: &str, decision: &str) -> (String, reqwest::Response) {
    assert!(url.contains("/consent?req="), "the device approval is asked: {url}");
    let page = browser.get(url).await.text().await.unwrap();
    let mut res = browser.post_form(&server.url("/consent"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("decision", decision)]).await;
    // An allow resumes the flow, whose last step answers with the page.
    while res.status() == 303 {
        res = browser.get(&absolute(server, &location(&res))).await;
    }
    (page, res)
}

/// The whole user side: code, password, consent answered with `decision`; returns the consent
/// page and the final page's text.
pub async fn answer(browser: &Browser, server: &impl Site, code: &str, username: &str, decision: &str) -> (String, String) {
    let next = code_and_password(browser, server, code, username).await;
    let (consent, res) = answer_consent(browser, server, &next, decision).await;
    assert_eq!(res.status(), 200, "the device flow ends on a page of its own");
    (consent, res.text().await.unwrap())
}
