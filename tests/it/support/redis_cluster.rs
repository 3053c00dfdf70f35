//! A Redis Cluster of three masters (no replicas): private `redis-server` processes on free
//! loopback ports, joined by `redis-cli --cluster create`, killed when the value is dropped.
//!
//! One per test process, started by the first test that asks (`shared`) and stopped when the run
//! ends (`stop_shared`, called by main): under `cargo test` every cluster test shares one (each
//! with its own key prefix); nextest runs a process per test, so there each starts its own. A
//! test that stops nodes starts a cluster of its own (`RedisCluster::spawn`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::private_redis::PrivateRedis;

const MASTERS: usize = 3;
/// The cluster bus listens on the port + 10000.
const BUS_OFFSET: u16 = 10000;

pub struct RedisCluster {
    /// Index i listens on `ports[i]`; `None` once stopped.
    nodes: Vec<Option<PrivateRedis>>,
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

static SHARED: Mutex<Option<Arc<RedisCluster>>> = Mutex::new(None);

/// The cluster of this test process, started on first use.
pub async fn shared() -> Arc<RedisCluster> {
    tokio::task::spawn_blocking(|| {
        // A test that panicked while starting it leaves the lock poisoned and the slot empty.
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| Arc::new(RedisCluster::start())).clone()
    })
    .await
    .expect("start the shared Redis Cluster")
}

/// Stops the shared cluster, if one was started (statics are never dropped).
pub fn stop_shared() {
    let cluster = SHARED.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(cluster);
}

/// A port whose cluster bus port is free as well (both checked by binding them a moment).
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port();
        if port < u16::MAX - BUS_OFFSET && std::net::TcpListener::bind(("127.0.0.1", port + BUS_OFFSET)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port whose port + {BUS_OFFSET} is free too, in 200 tries");
}

fn binaries() -> (String, String) {
    let env = super::harness::environment();
    match (&env.redis_server, &env.redis_cli) {
        (Some(server), Some(cli)) => (server.clone(), cli.clone()),
        _ => panic!("declared Need::RedisCluster"),
    }
}

impl RedisCluster {
    /// A cluster of this test's own, from async code.
    pub async fn spawn() -> Self {
        tokio::task::spawn_blocking(Self::start).await.expect("start a Redis Cluster")
    }

    /// Starts three cluster-enabled servers, joins them (slots split evenly, no replicas) and
    /// waits until every node says `cluster_state:ok`.
    pub fn start() -> Self {
        let (server, cli) = binaries();
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut nodes, mut ports) = (Vec::new(), Vec::new());
        while nodes.len() < MASTERS {
            let mut failures = Vec::new();
            let started = (0..5).find_map(|_| {
                let port = free_port_pair();
                let conf = dir.path().join(format!("nodes-{port}.conf"));
                let dir_arg = dir.path().display().to_string();
                let conf_arg = conf.display().to_string();
                let extra = ["--cluster-enabled", "yes", "--cluster-config-file", &conf_arg, "--dir", &dir_arg];
                match PrivateRedis::try_start_with(&server, port, &extra) {
                    Ok(node) => Some((node, port)),
                    Err(e) => {
                        failures.push(e);
                        None
                    }
                }
            });
            let (node, port) = started.unwrap_or_else(|| panic!("a cluster node did not start on any of 5 ports: {}", failures.join("; ")));
            nodes.push(Some(node));
            ports.push(port);
        }
        let cluster = Self { nodes, ports, _dir: dir };
        cluster.create(&cli);
        cluster.wait_until_ok(Duration::from_secs(30));
        cluster
    }

    fn create(&self, cli: &str) {
        let mut cmd = std::process::Command::new(cli);
        cmd.args(["--cluster", "create"]).args(self.ports.iter().map(|p| format!("127.0.0.1:{p}"))).args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = super::output_within(cmd, None, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed ({}): {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn wait_until_ok(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for url in self.node_urls() {
            loop {
                let info = redis::Client::open(url.as_str()).and_then(|c| c.get_connection()).and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c));
                let last = match info {
                    Ok(info) if info.lines().any(|l| l.trim() == "cluster_state:ok") => break,
                    Ok(info) => info.lines().next().unwrap_or_default().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(Instant::now() < deadline, "{url} not in cluster_state:ok within {limit:?}: {last}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `redis_url` for this cluster: every node is a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Each node's own URL, in the order of `ports`.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect()
    }

    /// Kills node `i` (no failover: there are no replicas).
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].take();
    }

    /// How many keys matching `pattern` each node holds, in the order of `ports`.
    pub async fn keys_per_node(&self, pattern: &str) -> Vec<usize> {
        let mut counts = Vec::new();
        for url in self.node_urls() {
            let mut conn = node_connection(&url).await;
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap_or_else(|e| panic!("KEYS at {url}: {e}"));
            counts.push(keys.len());
        }
        counts
    }

    /// Subscribers of `channel` at each node (a node counts only its own), in the order of
    /// `ports`; a stopped node counts 0.
    pub async fn subscribers_per_node(&self, channel: &str) -> Vec<i64> {
        let mut counts = Vec::new();
        for (i, url) in self.node_urls().iter().enumerate() {
            if self.nodes[i].is_none() {
                counts.push(0);
                continue;
            }
            let mut conn = node_connection(url).await;
            let (_, n): (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(&mut conn).await.unwrap_or_else(|e| panic!("PUBSUB NUMSUB at {url}: {e}"));
            counts.push(n);
        }
        counts
    }
}

/// A plain connection to one node (not routed by slot).
pub async fn node_connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    client.get_multiplexed_async_connection().await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}
