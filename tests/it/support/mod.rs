//! Test servers, isolated per test: a fresh SQLite file or PostgreSQL schema, a fresh Redis
//! key prefix, a fresh key-encryption key.

pub mod harness;
pub mod machine;
pub mod sso;

use std::sync::Arc;
use std::time::Duration;

use sesame::clock::{Clock, SystemClock};
use sesame::config::Config;
use sesame::server::{self, Stores};
use sesame::state::AppState;
use sesame::store::ephemeral::{MemoryStore, RedisStore};
use sesame::store::sql::SqlStore;
use sesame::store::{Durable, Ephemeral};
use tokio::task::JoinHandle;

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

/// Settings fit for tests: cheap password hashing, a fresh key-encryption key.
pub fn test_config(backend: Backend) -> Config {
    let mut config = Config::default();
    config.password.memory_kib = 64;
    config.password.iterations = 1;
    config.kek = Some(base64_kek());
    if backend == Backend::External {
        config.redis_url = redis_url();
    }
    config
}

fn base64_kek() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
        config.issuer = format!("http://{addr}");
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
        Self { base: format!("http://{addr}"), state, redis_prefix, db, handle, shutdown: Some(tx) }
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
