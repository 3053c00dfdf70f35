//! `/readyz` follows Redis: 503 while it is down, 200 again once it is back, without a restart
//! (on a private `redis-server` the test stops and starts again); and 503 while the node drains.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::harness::{environment, Need, Tests};
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test_needing(&[Need::RedisServer], "readiness_follows_redis_and_recovers_without_restart", readiness_follows_redis_and_recovers_without_restart)
        .test("readiness_says_draining_while_the_node_still_serves", readiness_says_draining_while_the_node_still_serves);
}

/// How long redis-server may take to say it is ready.
const START_LIMIT: Duration = Duration::from_secs(20);

struct PrivateRedis(Child);

impl PrivateRedis {
    /// Starts redis-server on `port` and waits for "Ready to accept connections"; the error is
    /// what it said when it could not (another process has the port, say).
    fn try_start(binary: &str, port: u16) -> Result<Self, String> {
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let redis = PrivateRedis(child);
        let deadline = Instant::now() + START_LIMIT;
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("Ready to accept connections") => return Ok(redis),
                Ok(line) => said.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("redis-server on port {port} exited: {}", said.join(" | "))),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("redis-server on port {port} not ready within {START_LIMIT:?}: {}", said.join(" | ")),
            }
        }
    }

    /// On a free port, retried with another one should the port be taken before redis binds it.
    fn start(binary: &str) -> (Self, u16) {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            match Self::try_start(binary, port) {
                Ok(redis) => return (redis, port),
                Err(e) => failures.push(e),
            }
        }
        panic!("redis-server did not start on any of 5 ports: {}", failures.join("; "));
    }

    /// Again on `port` (sesame is configured with it): retried for a while, in case a short-lived
    /// connection of another process holds it just now.
    fn restart(binary: &str, port: u16) -> Self {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match Self::try_start(binary, port) {
                Ok(redis) => return redis,
                Err(e) if Instant::now() >= deadline => panic!("redis-server could not start again on port {port} within 15 s: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn ready_status(server: &TestServer) -> u16 {
    http().get(server.url("/readyz")).timeout(Duration::from_secs(10)).send().await.unwrap().status().as_u16()
}

/// Polls `/readyz` until it answers `want`; panics after 30 s with `why`.
async fn wait_for_status(server: &TestServer, want: u16, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = ready_status(server).await;
        if last == want {
            return;
        }
        assert!(Instant::now() < deadline, "{why}: /readyz still says {last} after 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn readiness_follows_redis_and_recovers_without_restart() {
    let binary = environment().redis_server.clone().expect("declared Need::RedisServer");
    let (redis, port) = tokio::task::spawn_blocking({
        let binary = binary.clone();
        move || PrivateRedis::start(&binary)
    })
    .await
    .unwrap();
    let server = TestServer::start_with(Backend::Embedded, |c| c.redis_url = Some(format!("redis://127.0.0.1:{port}"))).await;
    assert_eq!(server.state.ephemeral.backend(), "redis");
    assert_eq!(ready_status(&server).await, 200);

    drop(redis);
    wait_for_status(&server, 503, "Redis stopped but /readyz did not say so").await;
    let body: serde_json::Value = http().get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["ephemeral"], "unreachable");
    assert_eq!(body["database"], "ok");

    let _redis = tokio::task::spawn_blocking(move || PrivateRedis::restart(&binary, port)).await.unwrap();
    wait_for_status(&server, 200, "Redis is back but /readyz did not recover").await;
    let body: serde_json::Value = http().get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["ephemeral"], "ok", "{body}");
    server.stop().await;
}

/// A draining node (`sesame serve` after SIGTERM, see `faults::drain`) is not ready, says why,
/// and still serves.
async fn readiness_says_draining_while_the_node_still_serves() {
    let server = TestServer::start(Backend::Embedded).await;
    let body: serde_json::Value = http().get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "database": "ok", "ephemeral": "ok"}));

    server.state.lifecycle.start_draining();
    let res = http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["connection"], "close", "a draining node sends clients elsewhere");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "draining", "database": "ok", "ephemeral": "ok"}));
    assert_eq!(http().get(server.url("/.well-known/openid-configuration")).send().await.unwrap().status(), 200);
    server.stop().await;
}
