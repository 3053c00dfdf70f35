//! The durable store on SQLite or PostgreSQL, through sqlx's `Any` driver: one set of queries
//! (portable SQL, `$n` placeholders, integers for times and flags) serves both databases.

mod api_keys;
mod audit;
mod clients;
mod consents;
mod denials;
mod factors;
mod keys;
mod logout_outbox;
mod migrations;
mod refresh_tokens;
mod retention;
mod roles;
mod sso_sessions;
mod upstream_identities;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use super::{Durable, StoreError, StoreResult};

#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: &'static str,
}

impl SqlStore {
    /// Connects (creating a missing SQLite file) without migrating.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" };
        let url = if backend == "sqlite" && !url.contains('?') { format!("{url}?mode=rwc") } else { url.to_string() };
        let options: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| StoreError::Other(format!("database_url: {e}")))?;
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5));
        if backend == "sqlite" {
            // synchronous = FULL: in WAL mode NORMAL may lose the last commits on power loss, and
            // a refresh rotation or revocation the client was told about must not be undone.
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options).await.map_err(map_err)?;
        Ok(Self { pool, backend })
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> StoreResult<Self> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = if self.backend == "sqlite" { migrations::sqlite() } else { migrations::postgres() };
        migrator.run(&self.pool).await.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Durable for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        self.backend
    }
}

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        // SQLSTATE classes 08 (connection exception), 53 (insufficient resources) and 57
        // (operator intervention: a server shutting down or restarting) say "try again later".
        sqlx::Error::Database(db) if db.code().is_some_and(|c| ["08", "53", "57"].iter().any(|class| c.starts_with(class))) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn from_json(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("corrupt list column: {e}")))
}

/// A JSON document column (metadata, audit details): corrupt text is an error, never a silent null.
fn json_value(text: &str, column: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("corrupt {column} column: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_json_columns_are_errors_not_nulls() {
        assert!(matches!(json_value("{\"a\":", "t.c"), Err(StoreError::Other(m)) if m.contains("t.c")));
        assert_eq!(json_value("null", "t.c").unwrap(), serde_json::Value::Null);
        assert!(from_json("[1,").is_err());
    }

    #[tokio::test]
    async fn sqlite_commits_are_durable_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display()), 2).await.unwrap();
        let pragma = |name: &'static str| {
            let pool = store.pool.clone();
            async move {
                let row = sqlx::query(&format!("PRAGMA {name}")).fetch_one(&pool).await.unwrap();
                sqlx::Row::try_get::<String, _>(&row, 0).or_else(|_| sqlx::Row::try_get::<i64, _>(&row, 0).map(|n| n.to_string())).unwrap()
            }
        };
        assert_eq!(pragma("journal_mode").await, "wal");
        assert_eq!(pragma("synchronous").await, "2", "FULL: NORMAL in WAL mode may lose the last commits on power loss");
        assert_eq!(pragma("busy_timeout").await, "5000");
        store.close().await;
    }
}
