//! The ephemeral store on Redis, shared by every node. One multiplexed connection that
//! reconnects by itself; every key carries a prefix so several deployments (or tests) can share a server.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::Ephemeral;
use crate::store::{StoreError, StoreResult};

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Other(format!("redis_url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1)
            .set_max_delay(500);
        let conn = ConnectionManager::new_with_config(client.clone(), config).await.map_err(map_err)?;
        Ok(Self { client, conn, prefix: prefix.to_string() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

fn map_err(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Other(e.to_string())
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

#[async_trait]
impl Ephemeral for RedisStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET").arg(self.key(key)).arg(value).arg("PX").arg(ttl_millis(ttl))
            .query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = redis::cmd("SET").arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(ttl_millis(ttl))
            .query_async(&mut conn).await.map_err(map_err)?;
        Ok(stored.is_some())
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        redis::cmd("GETDEL").arg(self.key(key)).query_async(&mut conn).await.map_err(map_err)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        conn.get(self.key(key)).await.map_err(map_err)
    }

    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        cmd.query_async(&mut conn).await.map_err(map_err)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(map_err)
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> StoreResult<i64> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        // One round trip, atomic: the TTL is set only by the increment that created the key.
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .incr(&key, delta)
            .cmd("PEXPIRE").arg(&key).arg(ttl_millis(ttl)).arg("NX").ignore()
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(count)
    }

    async fn add_member(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        redis::pipe()
            .atomic()
            .sadd(&key, member).ignore()
            .cmd("PEXPIRE").arg(&key).arg(ttl_millis(ttl)).arg("NX").ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(map_err)
    }

    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn.clone();
        conn.smembers(self.key(key)).await.map_err(map_err)
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(map_err)
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        conn.publish::<_, _, ()>(self.key(channel), message).await.map_err(map_err)
    }

    fn subscribe(&self, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = self.client.clone();
        let channel = self.key(channel);
        tokio::spawn(async move {
            let mut first = true;
            while !tx.is_closed() {
                let mut pubsub = match client.get_async_pubsub().await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "redis subscription failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                if pubsub.subscribe(&channel).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                if !first && tx.send(Vec::new()).is_err() {
                    return;
                }
                first = false;
                let mut messages = pubsub.on_message();
                while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                    if tx.send(message.get_payload_bytes().to_vec()).is_err() {
                        return;
                    }
                }
                tracing::warn!("redis subscription dropped; reconnecting");
            }
        });
        rx
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
