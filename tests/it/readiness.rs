//! `/readyz` follows Redis: 503 while it is down, 200 again once it is back, without a restart.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{http, Backend, TestServer};

fn redis_server_binary() -> Option<String> {
    std::env::var("SESAME_TEST_REDIS_SERVER").ok().or_else(|| {
        Command::new("redis-server").arg("--version").output().ok().filter(|o| o.status.success()).map(|_| "redis-server".to_string())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct PrivateRedis(Child);

impl PrivateRedis {
    fn start(binary: &str, port: u16) -> Self {
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
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

async fn wait_for_status(server: &TestServer, want: u16) -> u16 {
    let mut last = 0;
    for _ in 0..40 {
        last = ready_status(server).await;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

#[tokio::test]
async fn readiness_follows_redis_and_recovers_without_restart() {
    let Some(binary) = redis_server_binary() else {
        assert!(crate::support::redis_url().is_none(), "SESAME_TEST_REDIS_URL is set but no redis-server binary to stop and start");
        eprintln!("skipped: no redis-server binary on this machine");
        return;
    };
    let port = free_port();
    let redis = PrivateRedis::start(&binary, port);
    let server = TestServer::start_with(Backend::Embedded, |c| c.redis_url = Some(format!("redis://127.0.0.1:{port}"))).await;
    assert_eq!(server.state.ephemeral.backend(), "redis");
    assert_eq!(ready_status(&server).await, 200);

    drop(redis);
    assert_eq!(wait_for_status(&server, 503).await, 503, "Redis stopped but /readyz did not say so");
    let body: serde_json::Value = http().get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["ephemeral"], "unreachable");
    assert_eq!(body["database"], "ok");

    let _redis = PrivateRedis::start(&binary, port);
    assert_eq!(wait_for_status(&server, 200).await, 200, "Redis is back but /readyz did not recover");
    server.stop().await;
}
