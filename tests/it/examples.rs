//! The examples run for real: the FastAPI app signs users in through sesame in a headless
//! Chromium (with SSO between two instances, refresh and logout), and the resource server
//! checks JWTs offline and API keys through introspection, across a key rotation.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{json, Value};
use sesame::admin::api_keys::{Admin, NewApiKey};
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::store::AuthMethod;

use crate::browser::{start_browser, wait_for_url};
use crate::machine_support::{add_machine, Machine};
use crate::sso_support::{add_user, PASSWORD};
use crate::support::{backends, http, test_config, Backend, TestDatabase, TestServer};

const AUDIENCE: &str = "https://reports.example.com/";

fn python() -> Option<String> {
    match std::env::var("SESAME_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(std::env::var("CI").is_err(), "CI must provide SESAME_TEST_PYTHON (see .ci/run)");
            eprintln!("skipped: SESAME_TEST_PYTHON is not set (bash .ci/run sets it up)");
            None
        }
    }
}

struct Uvicorn(Child);

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn uvicorn(python: &str, example: &str, port: u16, env: &[(&str, String)]) -> Uvicorn {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/");
    let child = Command::new(python)
        .args(["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "warning"])
        .current_dir(format!("{dir}{example}"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .expect("start uvicorn");
    let app = Uvicorn(child);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return app;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{example} did not start on port {port}");
}

async fn web_app(server: &TestServer, python: &str, name: &str) -> (Uvicorn, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![format!("{url}/callback")];
    spec.post_logout_redirect_uris = vec![format!("{url}/")];
    spec.first_party = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, server.state.now()).await.unwrap();
    let mut env = vec![
        ("SESAME_ISSUER", server.base.clone()),
        ("APP_URL", url.clone()),
        ("APP_NAME", name.to_string()),
        ("SESSION_COOKIE", format!("session_{port}")),
        ("CLIENT_ID", created.client.id),
        ("CLIENT_SECRET", created.client_secret.unwrap()),
    ];
    if let Some(redis) = &server.state.config.redis_url {
        env.push(("REDIS_URL", redis.clone()));
    }
    (uvicorn(python, "fastapi-app", port, &env).await, url)
}

async fn text(browser: &fantoccini::Client, css: &str) -> String {
    browser.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn fastapi_app_signs_in_with_sso_refresh_and_logout() {
    let Some(python) = python() else { return };
    let profile = tempfile::tempdir().unwrap();
    let Some((_driver, browser)) = start_browser(profile.path()).await else { return };
    let backend = *backends().last().unwrap();
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let (_one, one) = web_app(&server, &python, "Wiki").await;
    let (_two, two) = web_app(&server, &python, "Chat").await;

    browser.goto(&format!("{one}/login")).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    browser.find(Locator::Css("input[name=username]")).await.unwrap().send_keys("alice").await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_url(&browser, &format!("{one}/")).await;
    assert_eq!(text(&browser, "#user").await, "alice");
    assert_eq!(text(&browser, "#email").await, "alice@example.com");

    // The second app: no password prompt.
    browser.goto(&format!("{two}/login")).await.unwrap();
    wait_for_url(&browser, &format!("{two}/")).await;
    assert_eq!(text(&browser, "#user").await, "alice", "{backend:?}: SSO into the second app");

    browser.goto(&format!("{one}/refresh")).await.unwrap();
    let shown = browser.source().await.unwrap();
    assert!(shown.contains("refreshed"), "{shown}");

    browser.goto(&format!("{one}/logout")).await.unwrap();
    wait_for_url(&browser, &format!("{one}/")).await;
    assert!(text(&browser, "#status").await.contains("Not signed in"));
    browser.goto(&format!("{two}/login")).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    assert!(browser.find(Locator::Css("input[name=password]")).await.is_ok(), "signed out of sesame too");
    browser.close().await.unwrap();
}

async fn resource_server(server: &TestServer, python: &str, jwks_cache_seconds: &str) -> (Uvicorn, String) {
    let rs = add_machine(server, "Reports API", "introspect", AuthMethod::ClientSecretBasic).await;
    let port = free_port();
    let env = [
        ("SESAME_ISSUER", server.base.clone()),
        ("RS_AUDIENCE", AUDIENCE.to_string()),
        ("CLIENT_ID", rs.id),
        ("CLIENT_SECRET", rs.secret.unwrap()),
        ("API_KEY_CACHE_SECONDS", "5".into()),
        ("JWKS_CACHE_SECONDS", jwks_cache_seconds.into()),
    ];
    (uvicorn(python, "resource-server", port, &env).await, format!("http://127.0.0.1:{port}/reports"))
}

async fn client_token(server: &TestServer, m: &Machine, resource: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let body: Value = http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&form).send().await.unwrap().json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn call(api: &str, header: (&str, String)) -> u16 {
    let res = http().get(api).header(header.0, header.1).send().await.unwrap();
    let status = res.status().as_u16();
    eprintln!("resource server: {status} {}", res.text().await.unwrap_or_default());
    status
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn resource_server_accepts_tokens_and_keys_and_refuses_the_rest() {
    let Some(python) = python() else { return };
    let server = TestServer::start(Backend::Embedded).await;
    let (_rs, api) = resource_server(&server, &python, "300").await;
    let batch = add_machine(&server, "Batch", "reports:read", AuthMethod::ClientSecretBasic).await;

    assert_eq!(call(&api, bearer(&client_token(&server, &batch, Some(AUDIENCE)).await)).await, 200);
    assert_eq!(call(&api, bearer(&client_token(&server, &batch, None).await)).await, 401, "token for another audience");

    let now = server.state.now();
    let claims = |exp: i64| json!({"iss": server.base, "sub": batch.id, "aud": AUDIENCE, "client_id": batch.id, "scope": "reports:read", "jti": "x", "iat": exp - 900, "exp": exp});
    let expired = sesame::crypto::jwt::sign(&server.state.keys.signer("RS256").unwrap(), "at+jwt", &claims(now - 60)).unwrap();
    assert_eq!(call(&api, bearer(&expired)).await, 401, "expired token");
    let stranger = sesame::crypto::keys::generate("RS256").unwrap();
    let stranger = sesame::crypto::keys::SigningKeyPair::from_pkcs8(&stranger.kid, "RS256", &stranger.pkcs8_der).unwrap();
    assert_eq!(call(&api, bearer(&sesame::crypto::jwt::sign(&stranger, "at+jwt", &claims(now + 600)).unwrap())).await, 401, "key not in the JWKS");

    let admin = Admin { config: &server.state.config, durable: server.state.durable.as_ref(), ephemeral: Some(server.state.ephemeral.as_ref()), actor: "test", now };
    let good = admin.generate(&NewApiKey { name: "exporter".into(), scope: Some("reports:read".into()), ..NewApiKey::default() }).await.unwrap();
    assert_eq!(call(&api, ("x-api-key", good.key.clone())).await, 200);
    let revoked = admin.generate(&NewApiKey { name: "old".into(), scope: Some("reports:read".into()), ..NewApiKey::default() }).await.unwrap();
    admin.revoke(&revoked.id).await.unwrap();
    assert_eq!(call(&api, ("x-api-key", revoked.key)).await, 401, "revoked key");
    let unscoped = admin.generate(&NewApiKey { name: "other".into(), scope: Some("billing:read".into()), ..NewApiKey::default() }).await.unwrap();
    assert_eq!(call(&api, ("x-api-key", unscoped.key)).await, 403);
}

#[tokio::test]
async fn resource_server_survives_a_key_rotation() {
    let Some(python) = python() else { return };
    // The server's clock starts in the past so that, after the pre-publication period, "now"
    // is real time again: tokens then carry times the resource server believes.
    let prepublish = 2 * 86_400;
    let real_now = SystemClock.now();
    let clock = Arc::new(ManualClock::new(real_now - prepublish - 3600));
    let db = TestDatabase::new(Backend::Embedded).await;
    let mut config = test_config(Backend::Embedded);
    config.database_url = db.url.clone();
    config.tokens.access_token_ttl = Duration::from_secs(3 * 86_400);
    let server = TestServer::start_on(config, clock.clone(), Some(db)).await;
    // The resource server's JWKS cache (1 s) stands for "much shorter than the pre-publication period".
    let (_rs, api) = resource_server(&server, &python, "1").await;
    let batch = add_machine(&server, "Batch", "reports:read", AuthMethod::ClientSecretBasic).await;

    let before = client_token(&server, &batch, Some(AUDIENCE)).await;
    assert_eq!(call(&api, bearer(&before)).await, 200);
    let old_kid = server.state.keys.signer("RS256").unwrap().kid.clone();

    server.state.keys.rotate_now(false).await.unwrap();
    // While the successor is only published, the resource server's cache turns over and learns it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(call(&api, bearer(&before)).await, 200);
    clock.set(real_now + 1);
    server.state.keys.rotate_if_due().await.unwrap();
    let new_kid = server.state.keys.signer("RS256").unwrap().kid.clone();
    assert_ne!(new_kid, old_kid, "the successor signs now");

    let after = client_token(&server, &batch, Some(AUDIENCE)).await;
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(call(&api, bearer(&after)).await, 200, "a token from the new key");
    assert_eq!(call(&api, bearer(&before)).await, 200, "a token from the retired key, still published");
}
