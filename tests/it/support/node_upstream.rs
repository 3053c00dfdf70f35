//! node-oidc-provider as an upstream identity provider (`tests/upstream/provider.mjs`): a real
//! provider we did not write, started per test on a port it picks. Tests using it declare
//! `Need::Node`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::harness::{environment, node_modules};

pub struct NodeUpstream {
    pub issuer: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl Drop for NodeUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeUpstream {
    /// Starts the provider; it serves once `register` has told it about its client.
    pub fn start() -> Self {
        let node = environment().node.clone().expect("tests using node-oidc-provider declare Need::Node");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream/provider.mjs");
        let mut child = Command::new(node)
            .arg(script)
            .arg(node_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        // Its JSON lines are ours; its warnings are not.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        let stdin = child.stdin.take();
        let mut upstream = Self { issuer: String::new(), child, stdin, lines };
        upstream.issuer = upstream.next_line()["issuer"].as_str().expect("the provider prints its issuer").to_string();
        upstream
    }

    fn next_line(&self) -> Value {
        self.lines.recv_timeout(Duration::from_secs(20)).expect("node-oidc-provider did not answer within 20 s")
    }

    /// Registers sesame as its one client, and waits until it serves.
    pub fn register(&mut self, client_id: &str, client_secret: &str, redirect_uri: &str) {
        let line = serde_json::json!({"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri});
        let mut stdin = self.stdin.take().expect("registered once");
        writeln!(stdin, "{line}").unwrap();
        assert_eq!(self.next_line()["ready"], true);
    }
}

/// A sesame test server whose login page offers node-oidc-provider as "Corp SSO" (the `corp`
/// provider: groups asked for, `corp.example` emails only, its `sesame-admins` group granting
/// the admin role), registered at the provider as its client.
pub async fn sesame_behind(node: &mut NodeUpstream, backend: crate::support::Backend) -> crate::support::TestServer {
    let secret = sesame::crypto::secrets::random_token(24);
    let toml = format!(
        "[[upstream]]\nid = \"corp\"\ndisplay_name = \"Corp SSO\"\nissuer = \"{}\"\nclient_id = \"sesame\"\nclient_secret = \"{secret}\"\nscopes = [\"openid\", \"profile\", \"email\", \"groups\"]\nallowed_email_domains = [\"corp.example\"]\nallow_private_networks = true\n[upstream.groups_to_roles]\nsesame-admins = \"admin\"\n",
        node.issuer
    );
    let upstream = sesame::config::Config::from_toml(&toml).unwrap().upstream;
    let server = crate::support::TestServer::start_with(backend, move |c| c.upstream = upstream).await;
    node.register("sesame", &secret, &server.url("/login/upstream/corp/callback"));
    server
}

/// In Chromium, at sesame's login page: "Continue with Corp SSO", then the provider's own
/// sign-in (its development accounts take any password) and consent pages, as `login`.
pub async fn sign_in_upstream(browser: &fantoccini::Client, node: &NodeUpstream, login: &str) {
    use fantoccini::Locator;
    browser.find(Locator::LinkText("Continue with Corp SSO")).await.unwrap().click().await.unwrap();
    crate::support::chromium::wait_for_url(browser, &format!("{}/interaction/", node.issuer)).await;
    browser.find(Locator::Css("input[name=login]")).await.unwrap().send_keys(login).await.unwrap();
    browser.find(Locator::Css("input[name=password]")).await.unwrap().send_keys("any password").await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("input[name=prompt][value=consent]")).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
}
