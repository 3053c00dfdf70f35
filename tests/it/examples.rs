//! The examples run for real: the FastAPI app signs users in through sesame in a headless
//! Chromium (with SSO between two instances, refresh and logout), and the resource server
//! checks JWTs offline and API keys through introspection, across a key rotation.
//!
//! Each uvicorn gets its listening socket from this process (`uvicorn --fd 3`): the port is
//! bound here and never released, so no other process can take it in between.

use sesame::crypto::alg::SigningAlg;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};
use sesame::admin::api_keys::{Admin, NewApiKey};
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::crypto::rotation::KeyState;
use sesame::store::AuthMethod;

use crate::support::chromium::{start_browser, wait_for_url};
use crate::support::harness::{environment, Need, Tests};
use crate::support::machine::{add_machine, Machine};
use crate::support::sso::{add_user, PASSWORD};
use crate::support::{http, test_config, Backend, TestDatabase, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend_needing(&[Need::Python, Need::Chromium], "fastapi_app_signs_in_with_sso_refresh_and_logout", fastapi_app_signs_in_with_sso_refresh_and_logout)
        .each_backend_needing(&[Need::Python, Need::Chromium, Need::Node], "two_fastapi_apps_sign_in_through_the_upstream_and_one_sign_out_ends_both", two_fastapi_apps_sign_in_through_the_upstream_and_one_sign_out_ends_both)
        .test_needing(&[Need::Python], "fastapi_app_accepts_only_sesames_fresh_logout_tokens_once", fastapi_app_accepts_only_sesames_fresh_logout_tokens_once)
        .test_needing(&[Need::Python], "resource_server_accepts_tokens_and_keys_and_refuses_the_rest", resource_server_accepts_tokens_and_keys_and_refuses_the_rest)
        .test_needing(&[Need::Python], "resource_server_survives_a_key_rotation", resource_server_survives_a_key_rotation);
}

const AUDIENCE: &str = "https://reports.example.com/";

fn python() -> String {
    environment().python.clone().expect("tests running the examples declare Need::Python")
}

/// A uvicorn child serving one example, stopped when dropped.
struct Uvicorn {
    child: Child,
    stderr: tempfile::NamedTempFile,
}

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod sys {
    use std::os::raw::c_int;
    pub const F_SETFD: c_int = 2;
    extern "C" {
        pub fn dup2(old: c_int, new: c_int) -> c_int;
        pub fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    }
}

/// A listening socket on 127.0.0.1 for an example to inherit, and its base URL.
fn example_socket() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a socket for the example");
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Starts `example` under uvicorn on the inherited `socket` (as its fd 3), and waits (at most
/// 60 s) until it answers HTTP at `url`.
async fn uvicorn(python: &str, example: &str, socket: std::net::TcpListener, url: &str, env: &[(&str, String)]) -> Uvicorn {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/");
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let fd = socket.as_raw_fd();
    let mut command = Command::new(python);
    command
        .args(["-m", "uvicorn", "app:app", "--fd", "3", "--log-level", "warning"])
        .current_dir(format!("{dir}{example}"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap());
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) are made.
    unsafe {
        command.pre_exec(move || {
            // The socket becomes fd 3 of the child, without close-on-exec.
            let done = if fd == 3 { sys::fcntl(3, sys::F_SETFD, 0) } else { sys::dup2(fd, 3) };
            if done < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("start uvicorn");
    // The child has its own copy of the socket now.
    drop(socket);
    let mut app = Uvicorn { child, stderr };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = app.child.try_wait().unwrap() {
            panic!("{example} exited ({status}) before serving: {}", std::fs::read_to_string(app.stderr.path()).unwrap_or_default());
        }
        // Connections wait in the socket's queue until uvicorn accepts them: any answer means it serves.
        if http().get(url).timeout(Duration::from_secs(2)).send().await.is_ok() {
            return app;
        }
        if Instant::now() >= deadline {
            panic!("{example} did not answer at {url} within 60 s: {}", std::fs::read_to_string(app.stderr.path()).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn web_app(server: &TestServer, python: &str, name: &str) -> (Uvicorn, String) {
    let (app, url, _) = web_app_of(server, python, name).await;
    (app, url)
}

/// The FastAPI example registered as client `name`: the process, its URL and its client id.
async fn web_app_of(server: &TestServer, python: &str, name: &str) -> (Uvicorn, String, String) {
    let (socket, url) = example_socket();
    let port = socket.local_addr().unwrap().port();
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![format!("{url}/callback")];
    spec.post_logout_redirect_uris = vec![format!("{url}/")];
    spec.backchannel_logout_uri = Some(format!("{url}/backchannel-logout"));
    spec.first_party = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let mut env = vec![
        ("SESAME_ISSUER", server.base.clone()),
        ("APP_URL", url.clone()),
        ("APP_NAME", name.to_string()),
        ("SESSION_COOKIE", format!("session_{port}")),
        ("CLIENT_ID", created.client.id.clone()),
        ("CLIENT_SECRET", created.client_secret.unwrap()),
    ];
    if let Some(redis) = &server.state.config.redis_url {
        env.push(("REDIS_URL", redis.clone()));
    }
    (uvicorn(python, "fastapi-app", socket, &url, &env).await, url, created.client.id)
}

async fn text(browser: &fantoccini::Client, css: &str) -> String {
    browser.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

/// Waits (at most 15 s) until the app at `app` shows its visitor signed out.
pub(crate) async fn signed_out_by_back_channel(browser: &fantoccini::Client, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        browser.goto(&format!("{app}/")).await.unwrap();
        let status = text(browser, "#status").await;
        if status.contains("Not signed in") {
            return;
        }
        assert!(Instant::now() < deadline, "the app at {app} still says: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn fastapi_app_signs_in_with_sso_refresh_and_logout(backend: Backend) {
    let python = python();
    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;
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
    // The second app never saw the sign-out: sesame's logout token ends its session.
    signed_out_by_back_channel(&browser, &two).await;
    browser.goto(&format!("{two}/login")).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    assert!(browser.find(Locator::Css("input[name=password]")).await.is_ok(), "signed out of sesame too");
    browser.close().await.unwrap();
}

/// The whole door: a person of the company's identity provider (node-oidc-provider) signs in to
/// two applications (the FastAPI example, twice) with one upstream sign-in, signs out of one,
/// and sesame's back-channel logout ends the other's session too.
async fn two_fastapi_apps_sign_in_through_the_upstream_and_one_sign_out_ends_both(backend: Backend) {
    use crate::support::node_upstream::{sesame_behind, sign_in_upstream, NodeUpstream};
    let python = python();
    let mut node = NodeUpstream::start();
    let server = sesame_behind(&mut node, backend).await;
    let (_one, one) = web_app(&server, &python, "Wiki").await;
    let (_two, two) = web_app(&server, &python, "Chat").await;
    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;

    browser.goto(&format!("{one}/login")).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    sign_in_upstream(&browser, &node, "ada").await;
    wait_for_url(&browser, &format!("{one}/")).await;
    assert_eq!(text(&browser, "#user").await, "ada");
    browser.goto(&format!("{two}/login")).await.unwrap();
    wait_for_url(&browser, &format!("{two}/")).await;
    assert_eq!(text(&browser, "#user").await, "ada", "{backend:?}: one upstream sign-in serves the second app");

    browser.goto(&format!("{one}/logout")).await.unwrap();
    wait_for_url(&browser, &format!("{one}/")).await;
    assert!(text(&browser, "#status").await.contains("Not signed in"));
    signed_out_by_back_channel(&browser, &two).await;
    browser.close().await.unwrap();
    server.stop().await;
}

/// The example's back-channel logout endpoint takes a logout token signed by sesame for this
/// client, once; it refuses a replay, another client's, an expired one, one signed by a stranger
/// and an ID token posing as one.
async fn fastapi_app_accepts_only_sesames_fresh_logout_tokens_once() {
    use sesame::logout::token::{self, LogoutTokenClaims};
    use sesame::tokens::access::Issuer;
    let python = python();
    let server = TestServer::start(Backend::Embedded).await;
    let (_app, url, client_id) = web_app_of(&server, &python, "Wiki").await;
    let post = |logout_token: String| {
        let url = format!("{url}/backchannel-logout");
        async move { http().post(url).form(&[("logout_token", logout_token)]).send().await.unwrap().status().as_u16() }
    };
    let now = server.state.now();
    let good = token::sign(Issuer::of(&server.state), &client_id, "user-1", "sid-1", now).unwrap();
    assert_eq!(post(good.clone()).await, 200, "sesame's logout token for this client");
    assert_eq!(post(good).await, 400, "a replayed logout token");
    assert_eq!(post(token::sign(Issuer::of(&server.state), "another-client", "user-1", "sid-1", now).unwrap()).await, 400, "another client's");
    assert_eq!(post(token::sign(Issuer::of(&server.state), &client_id, "user-1", "sid-1", now - 3600).unwrap()).await, 400, "expired");
    let (stranger, _) = crate::support::machine::client_key("RS256");
    let claims = LogoutTokenClaims::new(&server.base, &client_id, "user-1", "sid-1", now);
    assert_eq!(post(sesame::crypto::jwt::sign(&stranger, token::TYP, &claims).unwrap()).await, 400, "signed by a stranger");
    let ours = server.state.keys.signer(server.state.config.tokens.id_token_alg).unwrap();
    let id_token_like = LogoutTokenClaims { events: json!({}), ..LogoutTokenClaims::new(&server.base, &client_id, "user-1", "sid-1", now) };
    assert_eq!(post(sesame::crypto::jwt::sign(&ours, "JWT", &id_token_like).unwrap()).await, 400, "no logout event");
    server.stop().await;
}

async fn resource_server(server: &TestServer, python: &str, jwks_cache_seconds: &str) -> (Uvicorn, String) {
    let rs = add_machine(server, "Reports API", "introspect", AuthMethod::ClientSecretBasic).await;
    let (socket, url) = example_socket();
    let env = [
        ("SESAME_ISSUER", server.base.clone()),
        ("RS_AUDIENCE", AUDIENCE.to_string()),
        ("CLIENT_ID", rs.id),
        ("CLIENT_SECRET", rs.secret.unwrap()),
        ("API_KEY_CACHE_SECONDS", "5".into()),
        ("JWKS_CACHE_SECONDS", jwks_cache_seconds.into()),
    ];
    (uvicorn(python, "resource-server", socket, &url, &env).await, format!("{url}/reports"))
}

async fn client_token(server: &TestServer, m: &Machine, resource: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let body: Value = http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&form).send().await.unwrap().json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Calls the resource server; its status and JSON answer.
async fn call(api: &str, header: (&str, String)) -> (u16, Value) {
    let res = http().get(api).header(header.0, header.1).timeout(Duration::from_secs(30)).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "unparsed": text })))
}

/// A refusal of the resource server: 401 `invalid_token` with this description.
fn refused(description: &str) -> (u16, Value) {
    (401, json!({"error": "invalid_token", "error_description": description}))
}

fn allowed(caller: &str) -> (u16, Value) {
    (200, json!({"caller": caller, "reports": ["q1", "q2"]}))
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

async fn resource_server_accepts_tokens_and_keys_and_refuses_the_rest() {
    let server = TestServer::start(Backend::Embedded).await;
    let (_rs, api) = resource_server(&server, &python(), "300").await;
    let batch = add_machine(&server, "Batch", "reports:read", AuthMethod::ClientSecretBasic).await;

    assert_eq!(call(&api, bearer(&client_token(&server, &batch, Some(AUDIENCE)).await)).await, allowed(&batch.id));
    assert_eq!(call(&api, bearer(&client_token(&server, &batch, None).await)).await, refused("token is for another audience"));

    let now = server.state.now();
    let claims = |exp: i64| json!({"iss": server.base, "sub": batch.id, "aud": AUDIENCE, "client_id": batch.id, "scope": "reports:read", "jti": "x", "iat": exp - 900, "exp": exp});
    let expired = sesame::crypto::jwt::sign(&server.state.keys.signer(SigningAlg::RS256).unwrap(), "at+jwt", &claims(now - 60)).unwrap();
    assert_eq!(call(&api, bearer(&expired)).await, refused("token expired"));
    let stranger = sesame::crypto::keys::generate(SigningAlg::RS256).unwrap();
    let stranger = sesame::crypto::keys::SigningKeyPair::from_pkcs8(&stranger.kid, SigningAlg::RS256, &stranger.pkcs8_der).unwrap();
    assert_eq!(call(&api, bearer(&sesame::crypto::jwt::sign(&stranger, "at+jwt", &claims(now + 600)).unwrap())).await, refused("signed by an unknown key"), "key not in the JWKS");

    let admin = Admin { config: &server.state.config, durable: server.state.durable.as_ref(), ephemeral: server.state.ephemeral.as_ref(), actor: "test", now };
    let good = admin.generate(&NewApiKey { name: "exporter".into(), scope: Some("reports:read".into()), ..NewApiKey::default() }).await.unwrap();
    assert_eq!(call(&api, ("x-api-key", good.key.clone())).await, allowed(&good.id));
    let revoked = admin.generate(&NewApiKey { name: "old".into(), scope: Some("reports:read".into()), ..NewApiKey::default() }).await.unwrap();
    admin.revoke(&revoked.id).await.unwrap();
    assert_eq!(call(&api, ("x-api-key", revoked.key)).await, refused("API key not valid"), "revoked key");
    let unscoped = admin.generate(&NewApiKey { name: "other".into(), scope: Some("billing:read".into()), ..NewApiKey::default() }).await.unwrap();
    assert_eq!(call(&api, ("x-api-key", unscoped.key)).await, (403, json!({"error": "insufficient_scope"})));
}

/// How many times `/jwks.json` was fetched from `server`, by its metrics.
async fn jwks_fetches(server: &TestServer) -> u64 {
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("sesame_http_requests_total{") && l.contains("route=\"/jwks.json\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

async fn published_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = http().get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

/// The successor key is published before it signs anything, so a verifier that fetched the key
/// set during pre-publication accepts the first token the new key signs without fetching it
/// again. (The example refetches on an unknown kid, so a 200 alone would prove nothing: the
/// test counts the JWKS fetches on sesame's side.)
async fn resource_server_survives_a_key_rotation() {
    // The server's clock starts in the past so that, after the pre-publication period, "now"
    // is real time again: tokens then carry times the resource server believes.
    let prepublish = 2 * 86_400;
    let real_now = SystemClock.now();
    let clock = Arc::new(ManualClock::new(real_now - prepublish - 3600));
    let db = TestDatabase::new(Backend::Embedded).await;
    let mut config = test_config(Backend::Embedded);
    config.database_url = db.url.clone();
    config.tokens.access_token_ttl = Duration::from_secs(3 * 86_400);
    assert_eq!(config.keys.prepublish, Duration::from_secs(prepublish as u64), "the test assumes the default pre-publication period");
    let server = TestServer::start_on(config, clock.clone(), Some(db)).await;
    let batch = add_machine(&server, "Batch", "reports:read", AuthMethod::ClientSecretBasic).await;
    let before = client_token(&server, &batch, Some(AUDIENCE)).await;
    let old_kid = server.state.keys.signer(SigningAlg::RS256).unwrap().kid.clone();

    // Pre-publication: the successor is in the JWKS, and the old key still signs.
    server.state.keys.rotate_now(false).await.unwrap();
    let next: Vec<String> = server.state.keys.info().into_iter().filter(|k| k.alg == SigningAlg::RS256 && k.state == KeyState::Next).map(|k| k.kid).collect();
    assert_eq!(next.len(), 1, "one pending successor");
    let next_kid = next[0].clone();
    let published = published_kids(&server).await;
    assert!(published.contains(&next_kid), "the successor {next_kid} is not published before it signs: {published:?}");
    assert!(published.contains(&old_kid));
    let during = client_token(&server, &batch, Some(AUDIENCE)).await;
    assert_eq!(jsonwebtoken::decode_header(&during).unwrap().kid.as_deref(), Some(old_kid.as_str()), "the successor signed during pre-publication");

    // The resource server fetches the key set now, during pre-publication (as any cache that
    // turns over in that period would), and keeps it 300 s: longer than the rest of the test.
    let (_rs, api) = resource_server(&server, &python(), "300").await;
    let unfetched = jwks_fetches(&server).await;
    assert_eq!(call(&api, bearer(&before)).await, allowed(&batch.id));
    let fetches = jwks_fetches(&server).await;
    assert!(fetches > unfetched, "the resource server's JWKS fetch was not counted: the check below would prove nothing");

    // Activation: the successor signs.
    // Real time again (not a second ahead of it: the resource server refuses a token issued in
    // its future), well past the successor's activation at `real_now - 3600`.
    clock.set(SystemClock.now());
    server.state.keys.rotate_if_due().await.unwrap();
    let new_kid = server.state.keys.signer(SigningAlg::RS256).unwrap().kid.clone();
    assert_eq!(new_kid, next_kid, "the pre-published successor signs now");
    let after = client_token(&server, &batch, Some(AUDIENCE)).await;
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(call(&api, bearer(&after)).await, allowed(&batch.id), "a token from the new key");
    assert_eq!(jwks_fetches(&server).await, fetches, "the resource server had to fetch the JWKS again to verify the new key's token");
    assert_eq!(call(&api, bearer(&before)).await, allowed(&batch.id), "a token from the retired key, still published");
    assert!(published_kids(&server).await.contains(&old_kid), "the retired key is still published");
}
