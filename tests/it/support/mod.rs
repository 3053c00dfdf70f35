//! Test servers, isolated per test: a fresh SQLite file or PostgreSQL schema, a fresh Redis
//! key prefix, a fresh key-encryption key.

pub mod api_keys;
pub mod chromium;
pub mod dpop;
pub mod device;
pub mod fake_upstream;
pub mod harness;
pub mod machine;
pub mod node_upstream;
pub mod private_redis;
pub mod proxy;
pub mod redis_cluster;
pub mod sesame_process;
pub mod sso;
pub mod tokens;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sesame::clock::{Clock, SystemClock};
use sesame::config::Config;
use sesame::server::{self, Stores};
use sesame::state::AppState;
use sesame::store::ephemeral::{MemoryStore, RedisStore};
use sesame::store::sql::SqlStore;
use sesame::store::{Durable, Ephemeral};
use tokio::task::JoinHandle;

use self::harness::{Database, EphemeralKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and the in-process store.
    Embedded,
    /// PostgreSQL and Redis.
    External,
}

pub fn database_url() -> Option<String> {
    harness::environment().database_url.clone()
}

pub fn redis_url() -> Option<String> {
    harness::environment().redis_url.clone()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", sesame::crypto::secrets::random_token(9).to_lowercase().replace(['-', '_'], "x"))
}

/// An isolated database: a temporary SQLite file, or a fresh schema in the test PostgreSQL.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
                Self { url, _dir: Some(dir), schema: None }
            }
            Backend::External => {
                let base = database_url().expect("SESAME_TEST_DATABASE_URL");
                let schema = unique("t_");
                admin_sql(&base, &format!("CREATE SCHEMA {schema}")).await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Self { url, _dir: None, schema: Some((base, schema)) }
            }
        }
    }

    pub async fn of(database: Database) -> Self {
        Self::new(database.backend()).await
    }

    pub async fn open(&self) -> Arc<dyn Durable> {
        Arc::new(SqlStore::open(&self.url, 4).await.expect("open test database"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.schema.take() {
            // Drop may run inside or outside a runtime: do the cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(admin_sql(&base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")));
                }
            })
            .join();
        }
    }
}

async fn admin_sql(base: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(base).await.expect("connect to the test PostgreSQL");
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
}

pub async fn ephemeral(backend: Backend) -> Arc<dyn Ephemeral> {
    match backend {
        Backend::Embedded => Arc::new(MemoryStore::new()),
        Backend::External => {
            Arc::new(RedisStore::connect(&redis_url().expect("SESAME_TEST_REDIS_URL"), &format!("{}:", unique("test"))).await.expect("redis"))
        }
    }
}

pub async fn ephemeral_of(kind: EphemeralKind) -> Arc<dyn Ephemeral> {
    match kind {
        EphemeralKind::Memory | EphemeralKind::Redis => ephemeral(kind.backend()).await,
        EphemeralKind::RedisCluster => {
            let cluster = redis_cluster::shared().await;
            Arc::new(RedisStore::connect(&cluster.url(), &format!("{}:", unique("test"))).await.expect("redis cluster"))
        }
    }
}

/// Polls `check` (every 20 ms) until it yields a value; panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("gave up after {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `cmd` to completion with `stdin` as its input, at most `limit`: past it, the child is
/// killed and the test fails with what it printed so far.
pub fn output_within(mut cmd: std::process::Command, stdin: Option<&str>, limit: Duration) -> std::process::Output {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let input = stdin.unwrap_or_default().to_string();
    let mut pipe_in = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = pipe_in.write_all(input.as_bytes());
    });
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(status) => std::process::Output { status, stdout, stderr },
        None => panic!("{cmd:?} did not finish within {limit:?}; stdout: {} stderr: {}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr)),
    }
}

/// Deletes every Redis key of a cluster's keyspace: what a Redis restart without persistence does.
pub async fn forget_redis_keyspace(prefix: &str) {
    let client = redis::Client::open(redis_url().unwrap()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await.unwrap();
    }
}

/// Waits until `count` subscribers listen on a cluster's API key invalidation channel.
pub async fn wait_for_subscribers(prefix: &str, count: i64) {
    let client = redis::Client::open(redis_url().unwrap()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("{prefix}{}", sesame::api_keys::cache::INVALIDATION_CHANNEL);
    eventually(Duration::from_secs(10), &format!("{count} nodes subscribed to {channel}"), || {
        let mut conn = conn.clone();
        let channel = channel.clone();
        async move {
            let (_, n): (String, i64) = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut conn).await.unwrap();
            (n >= count).then_some(())
        }
    })
    .await;
}

/// Settings fit for tests: cheap password hashing, a fresh key-encryption key, no drain period
/// (`stop` stops accepting at once).
pub fn test_config(backend: Backend) -> Config {
    let mut config = Config::default();
    config.password.memory_kib = 64;
    config.password.iterations = 1;
    config.shutdown.drain = Duration::ZERO;
    config.kek = Some(base64_kek());
    // Hundreds of tests share two cores: a slow answer here is load, not an outage. The fault
    // tests set their own, short budget.
    config.store_timeout = Duration::from_secs(5);
    if backend == Backend::External {
        config.redis_url = redis_url();
    }
    config
}

/// A fresh key-encryption key, as `kek` takes it.
pub fn base64_kek() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Where sesame serves: an in-process `TestServer` or a spawned `sesame serve`.
pub trait Site {
    fn base(&self) -> &str;

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }
}

impl Site for TestServer {
    fn base(&self) -> &str {
        &self.base
    }
}

pub struct TestServer {
    pub base: String,
    pub state: AppState,
    /// Namespace of this server's Redis keys; a second node of the same cluster shares it.
    pub redis_prefix: String,
    db: Option<TestDatabase>,
    handle: JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDatabase::new(backend).await;
        let mut config = test_config(backend);
        config.database_url = db.url.clone();
        tweak(&mut config);
        Self::start_on(config, Arc::new(SystemClock), Some(db)).await
    }

    /// A fresh server whose time is `clock` (a `ManualClock` lets a test move time on).
    pub async fn start_with_clock(backend: Backend, clock: Arc<dyn Clock>, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDatabase::new(backend).await;
        let mut config = test_config(backend);
        config.database_url = db.url.clone();
        tweak(&mut config);
        Self::start_on(config, clock, Some(db)).await
    }

    /// Starts a server on the database `config` names (a second node, say); `db`, when given,
    /// lives as long as the server.
    pub async fn start_on(config: Config, clock: Arc<dyn Clock>, db: Option<TestDatabase>) -> Self {
        Self::start_node(config, clock, db, None).await
    }

    /// Like `start_on`, sharing the Redis keyspace `redis_prefix` when given.
    pub async fn start_node(mut config: Config, clock: Arc<dyn Clock>, db: Option<TestDatabase>, redis_prefix: Option<String>) -> Self {
        let redis_prefix = redis_prefix.unwrap_or_else(|| format!("{}:", unique("test")));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.listen = addr.to_string();
        // An issuer on `localhost` (what WebAuthn needs: a domain) keeps its name, on this port.
        let named = url::Url::parse(&config.issuer).ok().is_some_and(|u| u.host_str() == Some("localhost"));
        // A server terminating TLS itself is https, on the name its test certificate carries.
        let scheme = if config.tls.cert_file.is_some() { "https" } else { "http" };
        config.issuer = if named { format!("{scheme}://localhost:{}", addr.port()) } else { format!("{scheme}://{addr}") };
        let base = config.issuer.clone();
        config.validate().expect("test config is valid");
        let durable: Arc<dyn Durable> = Arc::new(SqlStore::open(&config.database_url, 4).await.expect("open test database"));
        let ephemeral: Arc<dyn Ephemeral> = match &config.redis_url {
            Some(url) => Arc::new(RedisStore::connect(url, &redis_prefix).await.expect("redis")),
            None => Arc::new(MemoryStore::new()),
        };
        let stores = Stores { durable, ephemeral };
        let state = server::build_state(config, stores, clock).await.expect("build state");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        let handle = tokio::spawn(async move {
            let _ = server::serve(listener, serve_state, async {
                let _ = rx.await;
            })
            .await;
        });
        Self { base, state, redis_prefix, db, handle, shutdown: Some(tx) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(mut self) -> Option<TestDatabase> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.handle).await;
        self.db.take()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}
