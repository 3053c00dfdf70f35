//! A scripted browser for the authorization code flow: a cookie jar, no automatic redirects,
//! and helpers to read the hidden fields of sesame's pages.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::LOCATION;
use sesame::admin::clients::{self, NewClient};
use sesame::admin::users::{self, NewUser};
use sesame::store::AuthMethod;
use sha2::{Digest, Sha256};

use crate::support::{Site, TestServer};

pub const PASSWORD: &str = "correct horse battery";

pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        Self { http, jar }
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies_for(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        self.jar.cookies(&url.parse().unwrap()).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get(LOCATION).unwrap_or_else(|| panic!("no Location on {}", res.status())).to_str().unwrap().to_string()
}

pub fn absolute(server: &impl Site, location: &str) -> String {
    if location.starts_with('/') { server.url(location) } else { location.to_string() }
}

/// The value of the hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

/// The message of sesame's error page (`<p class="error" role="alert">…</p>`), unescaped enough
/// for the texts the server writes.
pub async fn error_page_message(res: reqwest::Response) -> String {
    let page = res.text().await.unwrap();
    let marker = "<p class=\"error\" role=\"alert\">";
    let start = page.find(marker).unwrap_or_else(|| panic!("not an error page: {page}")) + marker.len();
    let end = page[start..].find("</p>").unwrap() + start;
    page[start..end].replace("&#96;", "`").replace("&#x60;", "`")
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = sesame::crypto::secrets::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

pub async fn add_client(server: &TestServer, name: &str, first_party: bool, public: bool) -> TestClient {
    let redirect_uri = format!("http://127.0.0.1:9/{}/callback", name.to_lowercase());
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![redirect_uri.clone()];
    spec.post_logout_redirect_uris = vec![format!("http://127.0.0.1:9/{}/bye", name.to_lowercase())];
    spec.grant_types = vec!["authorization_code".into()];
    spec.first_party = first_party;
    if public {
        spec.auth_method = AuthMethod::None;
    }
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    TestClient { id: created.client.id, secret: created.client_secret, redirect_uri }
}

pub async fn add_user(server: &TestServer, username: &str) -> String {
    let new = NewUser { username, password: PASSWORD, email: Some(format!("{username}@example.com")), name: Some("Alice Example".into()) };
    users::add(server.state.durable.as_ref(), &server.state.passwords, new, server.state.now()).await.unwrap().sub
}

pub fn authorize_url(server: &impl Site, client: &TestClient, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", &client.redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", "st-123 &odd")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let mut url = url.to_string();
    for (k, v) in extra {
        url = set_param(&url, k, v);
    }
    url
}

/// Replaces (or with an empty value, removes) one query parameter.
pub fn set_param(url: &str, key: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed.query_pairs().filter(|(k, _)| k != key).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    {
        let mut q = parsed.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if !value.is_empty() {
            q.append_pair(key, value);
        }
    }
    parsed.to_string()
}

/// From an authorize URL through login (and consent when asked) to the client's callback URL.
pub async fn sign_in(browser: &Browser, server: &impl Site, authorize: &str, username: &str) -> String {
    let res = browser.get(authorize).await;
    assert_eq!(res.status(), 303, "authorize should redirect to the login page");
    let login_url = absolute(server, &location(&res));
    assert!(login_url.contains("/login?req="), "{login_url}");
    let page = browser.get(&login_url).await.text().await.unwrap();
    let res = browser
        .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", username), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), 303, "login failed");
    follow_to_callback(browser, server, absolute(server, &location(&res))).await
}

/// The password step of a sign-in as `username`, from an authorize URL through
/// `/authorize/resume`: where sesame sends the browser next (a second step, consent, or the
/// client). The browser holds a session from here on.
pub async fn password_step(browser: &Browser, server: &impl Site, authorize: &str, username: &str) -> String {
    let res = browser.get(authorize).await;
    let page = browser.get(&absolute(server, &location(&res))).await.text().await.unwrap();
    let res = browser
        .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", username), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), 303, "password accepted");
    let res = browser.get(&absolute(server, &location(&res))).await;
    assert_eq!(res.status(), 303);
    absolute(server, &location(&res))
}

/// Posts `code` on the second-factor page at `url`; returns the response.
pub async fn enter_code(browser: &Browser, server: &impl Site, url: &str, code: &str) -> reqwest::Response {
    let page = browser.get(url).await;
    assert_eq!(page.status(), 200, "{url}");
    let page = page.text().await.unwrap();
    assert!(page.contains("name=\"code\""), "a form with input `code`");
    browser.post_form(&server.url("/login/factor"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("code", code)]).await
}

/// Follows sesame's redirects, allowing consent, until the browser is sent to the client.
pub async fn follow_to_callback(browser: &Browser, server: &impl Site, mut url: String) -> String {
    for _ in 0..6 {
        if !url.starts_with(server.base()) {
            return url;
        }
        if url.contains("/consent?req=") {
            let page = browser.get(&url).await.text().await.unwrap();
            let res = browser
                .post_form(&server.url("/consent"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("decision", "allow")])
                .await;
            url = absolute(server, &location(&res));
            continue;
        }
        let res = browser.get(&url).await;
        assert_eq!(res.status(), 303, "unexpected {} at {url}", res.status());
        url = absolute(server, &location(&res));
    }
    panic!("too many redirects");
}

/// POSTs `form` to `path` authenticated as `client` (Basic with a secret, else `client_id`).
pub async fn post_as(server: &impl Site, client: &TestClient, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    let request = crate::support::http().post(server.url(path));
    let request = match &client.secret {
        Some(secret) => request.basic_auth(&client.id, Some(secret)),
        None => {
            form.push(("client_id", client.id.as_str()));
            request
        }
    };
    request.form(&form).send().await.unwrap()
}

pub async fn redeem(server: &impl Site, client: &TestClient, code: &str, verifier: &str) -> reqwest::Response {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", client.redirect_uri.as_str()), ("code_verifier", verifier)];
    post_as(server, client, "/token", &form).await
}

/// The claims of a JWT, unverified (the tests that need a verified token check it elsewhere).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The claims of the ID token in a token response.
pub fn id_claims(tokens: &serde_json::Value) -> serde_json::Value {
    jwt_claims(tokens["id_token"].as_str().expect("an ID token"))
}
