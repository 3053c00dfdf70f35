//! The test harness: which real services and tools this machine has, and one libtest-mimic trial
//! per test and backend. A test whose service or tool is missing is reported as ignored (it shows
//! in the summary line); with `CI=true` or `SESAME_TEST_REQUIRE_ALL=1` it fails instead.

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};

use super::Backend;

/// A real dependency a test needs beyond the embedded backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Postgres,
    Redis,
    /// Chromium and chromedriver.
    Chromium,
    /// A Python with the examples' packages (`examples/requirements-test.txt`).
    Python,
    /// A `redis-server` binary, for tests that start and stop a private one.
    RedisServer,
    /// `redis-server` and `redis-cli`, for the tests that start a Redis Cluster of their own.
    RedisCluster,
    /// `node` and the `oidc-provider` package (in `bench/node_modules`, which `tests/run`
    /// installs), for the tests whose upstream identity provider is node-oidc-provider.
    Node,
    /// `node` and panva's client libraries (`oauth4webapi`, `openid-client`) in
    /// `tests/node/node_modules` (which `tests/run` installs), for the DPoP and PAR tests.
    NodeClients,
}

/// What this machine offers, probed once per test process.
#[derive(Debug, Default)]
pub struct Environment {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub chromium: Option<String>,
    pub chromedriver: Option<String>,
    pub python: Option<String>,
    pub redis_server: Option<String>,
    /// `redis-cli`, which creates the tests' Redis Cluster.
    pub redis_cli: Option<String>,
    pub node: Option<String>,
    /// `node`, when the client libraries of `tests/node` are installed.
    pub node_clients: Option<String>,
    /// Why each missing dependency is missing, for the run's header.
    pub missing: Vec<(Need, String)>,
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

pub fn environment() -> &'static Environment {
    ENVIRONMENT.get_or_init(Environment::probe)
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// `CI=true` (or `SESAME_TEST_REQUIRE_ALL=1`): a missing dependency fails its tests.
pub fn require_all() -> bool {
    matches!(var("CI").as_deref(), Some("true" | "1")) || var("SESAME_TEST_REQUIRE_ALL").as_deref() == Some("1")
}

fn find_binary(env: &str, names: &[&str]) -> Option<String> {
    if let Some(path) = var(env) {
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file()).map(|p| p.display().to_string())
}

/// Where `tests/run` provisions the examples' Python environment.
pub fn default_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-env/venv/bin/python")
}

/// Where `tests/run` installs the Node packages (the benchmark's: node-oidc-provider).
pub fn node_modules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/node_modules")
}

/// Where `tests/run` installs the client libraries of the DPoP and PAR tests (`tests/node`).
pub fn test_node_modules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/node_modules")
}


impl Environment {
    fn probe() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut env = Environment::default();
        let database_url = var("SESAME_TEST_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        match rt.block_on(probe_postgres(&database_url)) {
            Ok(()) => env.database_url = Some(database_url),
            Err(e) => env.missing.push((Need::Postgres, format!("PostgreSQL at {database_url}: {e}"))),
        }
        let redis_url = var("SESAME_TEST_REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.into());
        match rt.block_on(probe_redis(&redis_url)) {
            Ok(()) => env.redis_url = Some(redis_url),
            Err(e) => env.missing.push((Need::Redis, format!("Redis at {redis_url}: {e}"))),
        }
        env.chromium = find_binary("SESAME_TEST_CHROMIUM", &["chromium", "chromium-browser"]);
        env.chromedriver = find_binary("SESAME_TEST_CHROMEDRIVER", &["chromedriver"]);
        if env.chromium.is_none() || env.chromedriver.is_none() {
            env.missing.push((Need::Chromium, "chromium and chromedriver (Debian packages chromium, chromium-driver)".into()));
        }
        env.python = var("SESAME_TEST_PYTHON").or_else(|| Some(default_python()).filter(|p| p.is_file()).map(|p| p.display().to_string()));
        if env.python.is_none() {
            env.missing.push((Need::Python, "a Python with examples/requirements-test.txt (tests/run makes one)".into()));
        }
        env.node = find_binary("SESAME_TEST_NODE", &["node", "nodejs"]).filter(|_| node_modules().join("oidc-provider/package.json").is_file());
        if env.node.is_none() {
            env.missing.push((Need::Node, format!("node and the oidc-provider package in {} (tests/run installs them)", node_modules().display())));
        }
        let clients_installed = ["oauth4webapi", "openid-client"].iter().all(|p| test_node_modules().join(p).join("package.json").is_file());
        env.node_clients = find_binary("SESAME_TEST_NODE", &["node", "nodejs"]).filter(|_| clients_installed);
        if env.node_clients.is_none() {
            env.missing.push((Need::NodeClients, format!("node and the oauth4webapi and openid-client packages in {} (tests/run installs them)", test_node_modules().display())));
        }
        env.redis_server = find_binary("SESAME_TEST_REDIS_SERVER", &["redis-server"]);
        if env.redis_server.is_none() {
            env.missing.push((Need::RedisServer, "a redis-server binary".into()));
        }
        env.redis_cli = find_binary("SESAME_TEST_REDIS_CLI", &["redis-cli"]);
        if env.redis_server.is_none() || env.redis_cli.is_none() {
            env.missing.push((Need::RedisCluster, "redis-server and redis-cli binaries, for a Redis Cluster (Debian packages redis-server, redis-tools)".into()));
        }
        env
    }

    fn why_missing(&self, needs: &[Need]) -> Vec<&str> {
        self.missing.iter().filter(|(n, _)| needs.contains(n)).map(|(_, why)| why.as_str()).collect()
    }
}

async fn probe_postgres(url: &str) -> Result<(), String> {
    use sqlx::Connection;
    let connect = sqlx::PgConnection::connect(url);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3 s".into()),
    }
}

async fn probe_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(3), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within 3 s".into()),
    }
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "sqlite_memory",
            Backend::External => "postgres_redis",
        }
    }

    pub fn needs(self) -> &'static [Need] {
        match self {
            Backend::Embedded => &[],
            Backend::External => &[Need::Postgres, Need::Redis],
        }
    }
}

/// The database of a durable-store test: `::sqlite` always, `::postgres` when PostgreSQL is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

impl Database {
    pub fn name(self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres => "postgres",
        }
    }

    pub fn needs(self) -> &'static [Need] {
        match self {
            Database::Sqlite => &[],
            Database::Postgres => &[Need::Postgres],
        }
    }

    /// The full backend whose database this is.
    pub fn backend(self) -> Backend {
        match self {
            Database::Sqlite => Backend::Embedded,
            Database::Postgres => Backend::External,
        }
    }
}

/// The ephemeral store of a store test: `::memory` always, `::redis` when Redis is here,
/// `::redis_cluster` on a three-master cluster of its own when `redis-server` and `redis-cli` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralKind {
    Memory,
    Redis,
    RedisCluster,
}

impl EphemeralKind {
    pub fn name(self) -> &'static str {
        match self {
            EphemeralKind::Memory => "memory",
            EphemeralKind::Redis => "redis",
            EphemeralKind::RedisCluster => "redis_cluster",
        }
    }

    pub fn needs(self) -> &'static [Need] {
        match self {
            EphemeralKind::Memory => &[],
            EphemeralKind::Redis => &[Need::Redis],
            EphemeralKind::RedisCluster => &[Need::RedisCluster],
        }
    }

    /// The full backend whose ephemeral store this is (a cluster's is PostgreSQL's, as Redis's).
    pub fn backend(self) -> Backend {
        match self {
            EphemeralKind::Memory => Backend::Embedded,
            EphemeralKind::Redis | EphemeralKind::RedisCluster => Backend::External,
        }
    }
}

/// The longest a single trial may run before it fails (a safety net: every wait inside a test
/// has its own, tighter bound). `SESAME_TEST_TIMEOUT_SECS` overrides it.
fn trial_timeout() -> Duration {
    let secs = var("SESAME_TEST_TIMEOUT_SECS").and_then(|s| s.parse().ok()).unwrap_or(300);
    Duration::from_secs(secs)
}

/// The trials of one test module, named `module::test` (and `module::test::backend`).
pub struct Tests {
    module: &'static str,
    trials: Vec<Trial>,
}

impl Tests {
    pub fn new(module: &'static str) -> Self {
        Self { module, trials: Vec::new() }
    }

    /// A test on the embedded backend only (what it checks does not depend on storage).
    pub fn test<F: Future<Output = ()> + 'static>(&mut self, name: &str, f: fn() -> F) -> &mut Self {
        self.add(name.to_string(), &[], f)
    }

    /// A test that needs real services or tools beyond the embedded backend.
    pub fn test_needing<F: Future<Output = ()> + 'static>(&mut self, needs: &[Need], name: &str, f: fn() -> F) -> &mut Self {
        self.add(name.to_string(), needs, f)
    }

    /// One named test per backend: `name::sqlite_memory` and `name::postgres_redis`.
    pub fn each_backend<F: Future<Output = ()> + 'static>(&mut self, name: &str, f: fn(Backend) -> F) -> &mut Self {
        self.each_backend_needing(&[], name, f)
    }

    /// One named test per backend, each also needing `needs` (a browser, Python).
    pub fn each_backend_needing<F: Future<Output = ()> + 'static>(&mut self, needs: &[Need], name: &str, f: fn(Backend) -> F) -> &mut Self {
        for backend in [Backend::Embedded, Backend::External] {
            let all: Vec<Need> = needs.iter().chain(backend.needs()).copied().collect();
            self.add(format!("{name}::{}", backend.name()), &all, move || f(backend));
        }
        self
    }

    /// One named test per database: `name::sqlite` and `name::postgres` (no Redis needed).
    pub fn each_database<F: Future<Output = ()> + 'static>(&mut self, name: &str, f: fn(Database) -> F) -> &mut Self {
        for db in [Database::Sqlite, Database::Postgres] {
            self.add(format!("{name}::{}", db.name()), db.needs(), move || f(db));
        }
        self
    }

    /// One named test per ephemeral store: `name::memory`, `name::redis` and
    /// `name::redis_cluster` (no PostgreSQL needed).
    pub fn each_ephemeral<F: Future<Output = ()> + 'static>(&mut self, name: &str, f: fn(EphemeralKind) -> F) -> &mut Self {
        for kind in [EphemeralKind::Memory, EphemeralKind::Redis, EphemeralKind::RedisCluster] {
            self.add(format!("{name}::{}", kind.name()), kind.needs(), move || f(kind));
        }
        self
    }

    fn add<F: Future<Output = ()> + 'static>(&mut self, name: String, needs: &[Need], run: impl FnOnce() -> F + Send + 'static) -> &mut Self {
        let name = format!("{}::{name}", self.module);
        let missing: Vec<String> = environment().why_missing(needs).into_iter().map(str::to_string).collect();
        let trial = if missing.is_empty() {
            Trial::test(name, move || {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
                let limit = trial_timeout();
                let outcome = rt.block_on(async move { tokio::time::timeout(limit, run()).await });
                // A test that timed out may leave blocked tasks behind: do not wait for them forever.
                rt.shutdown_timeout(Duration::from_secs(5));
                outcome.map_err(|_| Failed::from(format!("the test did not finish within {} s (SESAME_TEST_TIMEOUT_SECS)", limit.as_secs())))
            })
        } else if require_all() {
            Trial::test(name, move || Err(Failed::from(format!("this run requires every dependency, and this machine lacks: {}", missing.join("; ")))))
        } else {
            Trial::test(name, || Ok(())).with_ignored_flag(true)
        };
        self.trials.push(trial);
        self
    }

    pub fn into_trials(self) -> Vec<Trial> {
        self.trials
    }
}
