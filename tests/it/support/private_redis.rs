//! A private `redis-server` on an ephemeral port, for tests that stop and start their Redis or
//! need a keyspace nobody else writes (`sesame serve` uses one fixed key prefix).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long redis-server may take to say it is ready.
const START_LIMIT: Duration = Duration::from_secs(20);

pub struct PrivateRedis(Child);

impl PrivateRedis {
    /// Starts redis-server on `port` and waits for "Ready to accept connections"; the error is
    /// what it said when it could not (another process has the port, say).
    fn try_start(binary: &str, port: u16) -> Result<Self, String> {
        Self::try_start_with(binary, port, &[])
    }

    /// `try_start` with more settings (`--cluster-enabled yes`, say).
    pub fn try_start_with(binary: &str, port: u16, extra: &[&str]) -> Result<Self, String> {
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""])
            .args(extra)
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
    pub fn start(binary: &str) -> (Self, u16) {
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
    pub fn restart(binary: &str, port: u16) -> Self {
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

impl PrivateRedis {
    /// `start` from async code, with the `redis-server` the harness found (`Need::RedisServer`).
    pub async fn spawn() -> (Self, u16) {
        tokio::task::spawn_blocking(|| Self::start(&binary())).await.unwrap()
    }

    /// `restart` from async code.
    pub async fn respawn(port: u16) -> Self {
        tokio::task::spawn_blocking(move || Self::restart(&binary(), port)).await.unwrap()
    }
}

fn binary() -> String {
    crate::support::harness::environment().redis_server.clone().expect("declared Need::RedisServer")
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
