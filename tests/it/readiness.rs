//! `/readyz` follows Redis: 503 while it is down, 200 again once it is back, without a restart
//! (on a private `redis-server` the test stops and starts again); and 503 while the node drains.

use std::time::{Duration, Instant};

use crate::support::harness::{Need, Tests};
use crate::support::private_redis::PrivateRedis;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test_needing(&[Need::RedisServer], "readiness_follows_redis_and_recovers_without_restart", readiness_follows_redis_and_recovers_without_restart)
        .test("readiness_says_draining_while_the_node_still_serves", readiness_says_draining_while_the_node_still_serves);
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
    let (redis, port) = PrivateRedis::spawn().await;
    let server = TestServer::start_with(Backend::Embedded, |c| c.redis_url = Some(format!("redis://127.0.0.1:{port}"))).await;
    assert_eq!(server.state.ephemeral.backend(), "redis");
    assert_eq!(ready_status(&server).await, 200);

    drop(redis);
    wait_for_status(&server, 503, "Redis stopped but /readyz did not say so").await;
    let body: serde_json::Value = http().get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["ephemeral"], "unreachable");
    assert_eq!(body["database"], "ok");

    let _redis = PrivateRedis::respawn(port).await;
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
