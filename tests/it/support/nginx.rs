//! nginx as a child process: plain round robin in front of several sesame nodes, as an operator
//! would put it (no sticky sessions), with its own configuration, logs and temporary files in a
//! temporary directory, on an ephemeral port of 127.0.0.1. The system's nginx service is never
//! used. Stopped (with its worker) when dropped.
//!
//! Retries (`proxy_next_upstream error timeout`, without `non_idempotent`): a request whose
//! connection to a node was refused, or timed out before it was established, was never sent, so
//! nginx passes it to the next node whatever its method. A GET whose node failed after it was
//! sent is passed on too (GETs are idempotent). A POST that reached a node is never sent twice:
//! it may have been handled (a refresh token rotated, an authorization code spent, an API key
//! issued), and a second try would meet reuse detection or create a second key; nginx answers
//! 502 instead. So a node must never fail a request it has accepted, and it must not close a
//! kept-alive connection nginx may be writing on: sesame closes every connection after each
//! answer while it drains, and nginx closes its idle upstream connections after
//! `UPSTREAM_KEEPALIVE_TIMEOUT`, shorter than the drain, so that none is left to the node to close.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Site;

/// How long nginx may take to start, or to load a new configuration.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long an idle kept-alive connection to a node is kept: shorter than the nodes'
/// `shutdown.drain`, so that a draining node is left with none of them when it stops.
pub const UPSTREAM_KEEPALIVE_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure (a refused connection), a node is skipped for this long, then tried again.
const FAIL_TIMEOUT: &str = "1s";

mod sys {
    use std::os::raw::c_int;
    extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
    }
}

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    binary: String,
    pub base: String,
    port: u16,
    /// Told apart by `/nginx-generation`, so a reload is known to have taken effect.
    generation: u32,
}

impl Nginx {
    /// Starts nginx in front of `upstreams` (`host:port` each; none: every request gets 502
    /// until a `reload` names some), on a free port.
    pub async fn start(upstreams: &[String]) -> Self {
        let binary = super::harness::environment().nginx.clone().expect("declared Need::Nginx");
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let dir = tempfile::tempdir().unwrap();
            for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                std::fs::create_dir_all(dir.path().join(temp)).unwrap();
            }
            std::fs::write(dir.path().join("nginx.conf"), config(dir.path(), port, upstreams, 1)).unwrap();
            let child = command(&binary, dir.path())
                .args(["-g", "daemon off; master_process on;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
                // Its own process group: on drop, the worker goes with the master whatever happens.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
            let mut nginx = Self { child, dir, binary: binary.clone(), base: format!("http://127.0.0.1:{port}"), port, generation: 1 };
            match nginx.wait_for_generation().await {
                Ok(()) => return nginx,
                // Another process took the port between our probe and nginx's bind, say.
                Err(e) => failures.push(e),
            }
        }
        panic!("nginx did not start on any of 5 ports: {}", failures.join("; "));
    }

    /// Loads a configuration with `upstreams` instead (`nginx -s reload`), and returns once
    /// nginx serves with it.
    pub async fn reload(&mut self, upstreams: &[String]) {
        self.write_config(upstreams);
        let mut reload = command(&self.binary, self.dir.path());
        reload.args(["-s", "reload"]);
        let out = super::output_within(reload, None, START_LIMIT);
        assert!(out.status.success(), "nginx -s reload: {}", String::from_utf8_lossy(&out.stderr));
        self.wait_for_generation().await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// The lines of its error log (retries show there: `connect() failed ... while connecting
    /// to upstream`).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Its access log: `status upstream_addresses upstream_statuses request`, one line each.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn write_config(&mut self, upstreams: &[String]) {
        self.generation += 1;
        let config = config(self.dir.path(), self.port, upstreams, self.generation);
        std::fs::write(self.dir.path().join("nginx.conf"), config).unwrap();
    }

    /// Polls `/nginx-generation` on new connections until it answers the current generation.
    async fn wait_for_generation(&mut self) -> Result<(), String> {
        let want = format!("generation {}", self.generation);
        let deadline = Instant::now() + START_LIMIT;
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
                return Err(format!("nginx exited ({status}) on port {}: {stderr} {}", self.port, self.error_log()));
            }
            if let Ok(res) = client.get(self.url("/nginx-generation")).timeout(Duration::from_secs(2)).send().await {
                if res.text().await.is_ok_and(|body| body.trim() == want) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("nginx did not serve {want} within {START_LIMIT:?}: {}", self.error_log()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `nginx` with everything under `dir`: prefix, configuration, and the error log it writes
/// before it has read the configuration.
fn command(binary: &str, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).arg("-e").arg(dir.join("error.log"));
    command
}

impl Site for Nginx {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SIGTERM: a fast shutdown; the master exits once its worker has.
        // SAFETY: kill(2) on the child's id, which is not reaped before the wait below.
        unsafe { sys::kill(pid, SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Stuck: the whole process group, master and worker (process_group(0) at spawn made it
        // nginx's own, and the master, not yet reaped, still holds its id).
        // SAFETY: kill(2) on the group of a child that has not been reaped.
        unsafe { sys::kill(-pid, SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The configuration: one worker, everything under `dir`, round robin over `upstreams`.
pub fn config(dir: &Path, port: u16, upstreams: &[String], generation: u32) -> String {
    let d = |name: &str| -> PathBuf { dir.join(name) };
    let servers = if upstreams.is_empty() {
        // An upstream block needs a server: one that is never used.
        "        server 127.0.0.1:9 down;\n".to_string()
    } else {
        upstreams.iter().map(|u| format!("        server {u} max_fails=1 fail_timeout={FAIL_TIMEOUT};\n")).collect()
    };
    // A master run as root hands its worker to `nobody`, which could not write the temporary
    // directories of a root-owned tempdir.
    let user = if is_root() { "user root;\n" } else { "" };
    format!(
        r#"# Written by tests/it/support/nginx.rs (generation {generation}).
{user}worker_processes 1;
pid {pid};
error_log {error_log} warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$status $upstream_addr $upstream_status "$request"';
    access_log {access_log} upstreams;
    client_body_temp_path {client_body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};

    upstream sesame {{
{servers}        keepalive 32;
        keepalive_timeout {keepalive_ms}ms;
    }}

    server {{
        listen 127.0.0.1:{port};

        location = /nginx-generation {{
            return 200 "generation {generation}\n";
        }}

        location / {{
            proxy_pass http://sesame;
            # Kept-alive connections to the nodes.
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The issuer is this address: sesame sees the name and port the client used.
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # Refused or timed out at connect: never sent, so the next node gets it, POSTs too.
            # Not non_idempotent: a POST a node received is not sent again (see the module doc).
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"#,
        pid = d("nginx.pid").display(),
        error_log = d("error.log").display(),
        access_log = d("access.log").display(),
        client_body = d("client_body").display(),
        proxy = d("proxy").display(),
        fastcgi = d("fastcgi").display(),
        uwsgi = d("uwsgi").display(),
        scgi = d("scgi").display(),
        keepalive_ms = UPSTREAM_KEEPALIVE_TIMEOUT.as_millis(),
    )
}

fn is_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid(2) cannot fail.
    unsafe { geteuid() == 0 }
}
