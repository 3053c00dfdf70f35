//! A headless Chromium driven through chromedriver (WebDriver), for the browser and example
//! tests. The binaries come from `harness::environment()`; tests using this declare
//! `Need::Chromium`, so they never get here without them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client as WebDriver, ClientBuilder};

use super::harness::environment;

/// How long chromedriver may take to say it listens, and a WebDriver session to open.
const START_LIMIT: Duration = Duration::from_secs(60);

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What chromedriver said about starting.
enum Started {
    /// Listening on this port.
    On(u16),
    /// Listening, on a port it did not name (a chromedriver older than 128).
    Unnamed,
}

/// Starts chromedriver on `port` (0: a port it picks itself) and waits for its start-up line.
/// The rest of its output is drained so that it never blocks on a full pipe.
fn spawn_driver(binary: &str, port: u16) -> (Driver, Result<Started, String>) {
    let mut child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({binary}): {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining.
                continue;
            }
        }
    });
    let driver = Driver(child);
    let deadline = Instant::now() + START_LIMIT;
    let mut said = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("was started successfully").nth(1) {
                    let port = rest.trim().trim_start_matches("on port").trim().trim_end_matches('.').parse::<u16>().ok();
                    return (driver, Ok(port.filter(|p| *p != 0).map_or(Started::Unnamed, Started::On)));
                }
                said.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return (driver, Err(format!("chromedriver did not report a start within {START_LIMIT:?}; it said: {}", said.join(" | "))))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return (driver, Err(format!("chromedriver exited; it said: {}", said.join(" | ")))),
        }
    }
}

/// chromedriver on a port it chose itself (`--port=0`), which it names when it starts. An old
/// chromedriver that does not name it is started on ports we pick, retried a few times in case
/// another process takes the port between our choice and its bind.
fn start_driver(binary: &str) -> (Driver, u16) {
    let (driver, started) = spawn_driver(binary, 0);
    match started {
        Ok(Started::On(port)) => return (driver, port),
        Ok(Started::Unnamed) => drop(driver),
        Err(e) => panic!("{e}"),
    }
    let mut failures = Vec::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (driver, started) = spawn_driver(binary, port);
        match started {
            Ok(_) => return (driver, port),
            Err(e) => failures.push(e),
        }
    }
    panic!("chromedriver did not start on any of 5 ports: {}", failures.join("; "));
}

/// Starts chromedriver and a headless Chromium session with its profile in `profile`.
pub async fn start_browser(profile: &std::path::Path) -> (Driver, WebDriver) {
    let env = environment();
    let driver_bin = env.chromedriver.clone().expect("tests using Chromium declare Need::Chromium");
    let chromium = env.chromium.clone().expect("tests using Chromium declare Need::Chromium");
    let (driver, port) = tokio::task::spawn_blocking(move || start_driver(&driver_bin)).await.expect("start chromedriver");
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
    let deadline = Instant::now() + START_LIMIT;
    loop {
        match ClientBuilder::rustls().expect("tls").capabilities(caps.clone()).connect(&url).await {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() >= deadline => panic!("no Chromium session from chromedriver on port {port} within {START_LIMIT:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits (at most 20 s) until the browser's address starts with `prefix`; returns it.
pub async fn wait_for_url(browser: &WebDriver, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = browser.current_url().await.unwrap().to_string();
        if url.starts_with(prefix) {
            return url;
        }
        if Instant::now() >= deadline {
            panic!("the browser never reached {prefix} within 20 s; it is at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stand-in relying party for browser tests: its pages `/one/callback` and `/two/callback`
/// show what they received (`#received`), `/bye` says goodbye. Returns its base URL.
pub async fn start_app() -> String {
    use axum::extract::RawQuery;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let show = |RawQuery(q): RawQuery| async move { axum::response::Html(format!("<p id=\"received\">{}</p>", q.unwrap_or_default())) };
    let app = axum::Router::new()
        .route("/one/callback", axum::routing::get(show))
        .route("/two/callback", axum::routing::get(show))
        .route("/bye", axum::routing::get(|| async { "signed out" }));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    base
}

/// A command of the WebDriver extensions (WebAuthn's virtual authenticators): `path` under the
/// session, with a JSON body or none.
#[derive(Debug)]
pub struct Extension {
    pub method: axum::http::Method,
    pub path: String,
    pub body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(|b| b.to_string()))
    }
}

/// A virtual authenticator in `browser` (chromedriver's WebAuthn extension): a platform
/// authenticator that keeps discoverable credentials and verifies its user (a fingerprint that
/// always matches). Returns its id.
pub async fn add_virtual_authenticator(browser: &WebDriver) -> String {
    let options = serde_json::json!({
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
        "hasUserVerification": true, "isUserVerified": true, "automaticPresenceSimulation": true,
    });
    let cmd = Extension { method: axum::http::Method::POST, path: "webauthn/authenticator".into(), body: Some(options) };
    let id = browser.issue_cmd(cmd).await.expect("chromedriver adds a virtual authenticator");
    id.as_str().expect("an authenticator id").to_string()
}

/// The credentials a virtual authenticator holds.
pub async fn virtual_credentials(browser: &WebDriver, authenticator: &str) -> Vec<serde_json::Value> {
    let cmd = Extension { method: axum::http::Method::GET, path: format!("webauthn/authenticator/{authenticator}/credentials"), body: None };
    let found = browser.issue_cmd(cmd).await.expect("chromedriver lists the credentials");
    found.as_array().cloned().unwrap_or_default()
}
