//! The device grant end to end with software we did not write: a command-line tool built on
//! panva's openid-client (`tests/node/device_flow.mjs`) starts the flow and polls as the
//! library does, while the user approves in a real headless Chromium (types the code, signs
//! in, reads the consent page, allows). The tool then validates its ID token and calls userinfo.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::support::chromium::{start_browser, wait_for_url};
use crate::support::device::{add_device_client, ClientOptions};
use crate::support::harness::{environment, test_node_modules, Need, Tests};
use crate::support::sso::{add_user, PASSWORD};
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend_needing(&[Need::Chromium, Need::NodeClients], "openid_client_polls_while_chromium_approves", openid_client_polls_while_chromium_approves);
}

/// The tool, killed when the test ends however it ends.
struct Tool(Child);

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_tool(issuer: &str, client_id: &str) -> (Tool, mpsc::Receiver<Value>) {
    let node = environment().node_clients.clone().expect("tests using openid-client declare Need::NodeClients");
    let dir = test_node_modules().parent().expect("tests/node").to_path_buf();
    let mut child = Command::new(node)
        .arg(dir.join("device_flow.mjs"))
        .arg(issuer)
        .arg(client_id)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let value = serde_json::from_str::<Value>(&line).unwrap_or_else(|_| Value::String(line));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    (Tool(child), rx)
}

fn next_line(lines: &mpsc::Receiver<Value>, limit: Duration) -> Value {
    let line = lines.recv_timeout(limit).unwrap_or_else(|e| panic!("the openid-client tool said nothing within {limit:?}: {e}"));
    assert!(line.get("error").is_none(), "the openid-client tool failed: {line}");
    line
}

async fn openid_client_polls_while_chromium_approves(backend: Backend) {
    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;
    // A one-second interval keeps the library's polling quick.
    let server = TestServer::start_with(backend, |c| c.device.interval = Duration::from_secs(1)).await;
    let sub = add_user(&server, "alice").await;
    let tool_client = add_device_client(&server, "Deploy CLI", ClientOptions::default()).await;
    let (_tool, lines) = run_tool(&server.base, &tool_client.id);
    let shown = tokio::task::spawn_blocking(move || {
        let first = next_line(&lines, Duration::from_secs(30));
        (first, lines)
    })
    .await
    .unwrap();
    let (shown, lines) = shown;
    let user_code = shown["user_code"].as_str().expect("a user code").to_string();
    assert_eq!(shown["verification_uri"], server.url("/device"), "{shown}");

    // What the user does: open the address the tool printed, type the code, sign in, allow.
    browser.goto(shown["verification_uri"].as_str().unwrap()).await.unwrap();
    browser.find(Locator::Css("input[name=user_code]")).await.unwrap().send_keys(&user_code.to_lowercase()).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    let main = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(main.contains("Deploy CLI"), "the login page names the client: {main}");
    browser.find(Locator::Css("input[name=username]")).await.unwrap().send_keys("alice").await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_url(&browser, &server.url("/consent")).await;
    let main = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(main.contains("Deploy CLI") && main.contains(&user_code), "the consent page names the client and repeats the code: {main}");
    browser.find(Locator::Css("button[name=decision][value=allow]")).await.unwrap().click().await.unwrap();
    let heading = browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::XPath("//h1[contains(., 'Device connected')]")).await;
    assert!(heading.is_ok(), "the browser ends on the 'return to your device' page");

    let got = tokio::task::spawn_blocking(move || next_line(&lines, Duration::from_secs(60))).await.unwrap();
    assert_eq!(got["sub"], sub.as_str(), "{got}");
    assert_eq!(got["claims"]["aud"], tool_client.id.as_str());
    assert_eq!(got["userinfo"]["email"], "alice@example.com");
    assert_eq!(got["scope"], "openid profile email offline_access");
    assert_eq!(got["refresh_token"], true);
    server.stop().await;
    browser.close().await.unwrap();
}
