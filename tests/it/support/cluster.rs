//! A cluster of real `sesame serve` nodes behind nginx: one PostgreSQL schema, one Redis (a
//! private redis-server: `sesame serve` keys everything under one fixed prefix, so a keyspace of
//! the shared Redis would meet other tests'), one key-encryption key, and the issuer is nginx's
//! address. Every node is stopped when the cluster is dropped, nginx and Redis too.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use sesame::admin::clients::{self, NewClient};
use sesame::admin::users::{self, NewUser};
use sesame::clock::{Clock, SystemClock};
use sesame::crypto::password::Passwords;
use sesame::store::Durable;

use super::harness::Need;
use super::nginx::Nginx;
use super::private_redis::PrivateRedis;
use super::sesame_process::SesameProcess;
use super::sso::{TestClient, PASSWORD};
use super::{base64_kek, eventually, http, test_config, Backend, Site, TestDatabase};

/// What a cluster test needs: PostgreSQL, a redis-server binary, and nginx.
pub const NEEDS: &[Need] = &[Need::Postgres, Need::RedisServer, Need::Nginx];

/// Routes that only probes and scrapers ask for: not counted as requests served.
const PROBES: [&str; 3] = ["/metrics", "/readyz", "/healthz"];

pub struct Node {
    /// None while it is stopped.
    process: Option<SesameProcess>,
    /// `127.0.0.1:PORT`, kept across restarts.
    pub addr: String,
    /// Logs of its earlier runs, oldest first.
    pub earlier_logs: Vec<String>,
}

impl Node {
    pub fn process(&self) -> &SesameProcess {
        self.process.as_ref().expect("the node is running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub db: TestDatabase,
    /// The key-encryption key every node shares (the CLI needs it too).
    pub kek: String,
    redis_url: String,
    env: Vec<(&'static str, String)>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    // Dropped after the nodes, so that none of them meets a vanished Redis or nginx on its way out.
    pub nginx: Nginx,
    _redis: PrivateRedis,
}

impl Cluster {
    /// `count` nodes of `binary` (the test build's `sesame`, or a release build), with `env` on
    /// top of the cluster's settings, behind a fresh nginx.
    pub async fn start(count: usize, binary: &Path, env: &[(&'static str, String)]) -> Self {
        let db = TestDatabase::new(Backend::External).await;
        let (redis, redis_port) = PrivateRedis::spawn().await;
        let nginx = Nginx::start(&[]).await;
        let kek = base64_kek();
        let redis_url = format!("redis://127.0.0.1:{redis_port}");
        let mut all = vec![
            ("SESAME_DATABASE_URL", db.url.clone()),
            ("SESAME_REDIS_URL", redis_url.clone()),
            ("SESAME_KEK", kek.clone()),
            ("SESAME_ISSUER", nginx.base.clone()),
            // nginx on loopback: its X-Forwarded-For is believed.
            ("SESAME_TRUSTED_PROXIES", "[\"127.0.0.1/32\"]".into()),
            ("SESAME_PASSWORD__MEMORY_KIB", "64".into()),
            ("SESAME_PASSWORD__ITERATIONS", "1".into()),
        ];
        all.extend(env.iter().cloned());
        let mut cluster = Self { nodes: Vec::new(), db, kek, redis_url, env: all, binary: binary.to_path_buf(), dir: tempfile::tempdir().unwrap(), nginx, _redis: redis };
        // One after the other: the first migrates the schema and creates the signing keys.
        for _ in 0..count {
            let process = cluster.spawn("127.0.0.1:0").await.unwrap_or_else(|log| panic!("a node did not start: {log}"));
            let addr = process.base.trim_start_matches("http://").to_string();
            cluster.nodes.push(Node { process: Some(process), addr, earlier_logs: Vec::new() });
        }
        let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
        cluster.nginx.reload(&addrs).await;
        cluster
    }

    async fn spawn(&self, listen: &str) -> Result<SesameProcess, String> {
        let mut env = self.env.clone();
        env.push(("SESAME_LISTEN", listen.to_string()));
        SesameProcess::try_serve(&self.binary, self.dir.path(), &env).await
    }

    /// Sends `signal` to node `i` and waits (at most `limit`) for it to exit: its exit status.
    pub async fn stop(&mut self, i: usize, signal: i32, limit: Duration) -> ExitStatus {
        let node = &mut self.nodes[i];
        let mut process = node.process.take().expect("the node is running");
        process.signal(signal);
        let status = process.exit_within(limit).await;
        let log = process.log();
        node.earlier_logs.push(log.clone());
        status.unwrap_or_else(|| panic!("node {i} still runs {limit:?} after signal {signal}: {log}"))
    }

    /// Starts node `i` again on its port, and waits until `/readyz` says 200. The port may be
    /// held for a moment (by a connection of another process that got it as its own local port):
    /// tried again for up to 15 s.
    pub async fn restart(&mut self, i: usize) {
        let addr = self.nodes[i].addr.clone();
        let deadline = Instant::now() + Duration::from_secs(15);
        let process = loop {
            match self.spawn(&addr).await {
                Ok(process) => break process,
                Err(log) if log.contains("cannot listen") && Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(log) => panic!("node {i} did not start again on {addr}: {log}"),
            }
        };
        self.nodes[i].process = Some(process);
        self.ready(i).await;
    }

    /// Waits until node `i` says it is ready (`/readyz` 200), asked directly.
    pub async fn ready(&self, i: usize) {
        let url = self.nodes[i].url("/readyz");
        eventually(Duration::from_secs(30), &format!("node {i} ready"), || {
            let url = url.clone();
            async move { http().get(&url).timeout(Duration::from_secs(5)).send().await.ok().filter(|r| r.status() == 200).map(|_| ()) }
        })
        .await;
    }

    /// Requests node `i` has answered in its current run, probes and scrapes aside: the sum of
    /// its `sesame_http_requests_total`, scraped from the node itself.
    pub async fn requests_served(&self, i: usize) -> u64 {
        let res = http().get(self.nodes[i].url("/metrics")).timeout(Duration::from_secs(10)).send().await.expect("metrics");
        served(&res.text().await.unwrap())
    }

    /// Waits until every running node listens for API key revocations (a message published
    /// before a node subscribed would not reach it).
    pub async fn wait_for_subscribers(&self) {
        let count = self.nodes.iter().filter(|n| n.process.is_some()).count() as i64;
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        // `sesame serve`'s fixed prefix.
        let channel = format!("sesame:{}", sesame::api_keys::cache::INVALIDATION_CHANNEL);
        eventually(Duration::from_secs(10), &format!("{count} nodes subscribed to {channel}"), || {
            let (mut conn, channel) = (conn.clone(), channel.clone());
            async move {
                let (_, n): (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut conn).await.unwrap();
                (n >= count).then_some(())
            }
        })
        .await;
    }

    pub async fn durable(&self) -> std::sync::Arc<dyn Durable> {
        self.db.open().await
    }

    /// A user (password `PASSWORD`) straight into the cluster's database; their `sub`.
    pub async fn add_user(&self, username: &str) -> String {
        let passwords = Passwords::new(&test_config(Backend::External).password).unwrap();
        let new = NewUser { username, password: PASSWORD, email: Some(format!("{username}@example.com")), name: None };
        users::add(self.durable().await.as_ref(), &passwords, new, SystemClock.now()).await.unwrap().sub
    }

    /// A client straight into the cluster's database.
    pub async fn add_client(&self, spec: &NewClient) -> TestClient {
        let created = clients::add(self.durable().await.as_ref(), spec, "test", SystemClock.now()).await.unwrap();
        TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris.first().cloned().unwrap_or_default() }
    }
}

impl Site for Cluster {
    fn base(&self) -> &str {
        &self.nginx.base
    }
}

/// The requests counted in a `/metrics` text, probes and scrapes aside.
pub fn served(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("sesame_http_requests_total{"))
        .filter(|line| !PROBES.iter().any(|probe| line.contains(&format!("route=\"{probe}\""))))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A first-party web app with a redirect URI on a closed port, allowed refresh tokens.
pub fn web_app(name: &str) -> NewClient {
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![format!("http://127.0.0.1:9/{}/callback", name.to_lowercase())];
    spec.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    spec.first_party = true;
    spec
}

/// A confidential machine client (client_credentials) with `scope`.
pub fn machine(name: &str, scope: &str) -> NewClient {
    let mut spec = NewClient::new(name);
    spec.grant_types = vec!["client_credentials".into()];
    spec.scope = Some(scope.into());
    spec
}
