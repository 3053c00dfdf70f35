//! Short-lived state (codes, pending requests, sessions, counters): Redis, or in-process.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
use super::StoreResult;

#[async_trait]
pub trait Ephemeral: Send + Sync {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;
    /// Stores only if the key is absent; true when stored. For replay detection.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool>;
    /// Returns the value and deletes it in one atomic step: at most one caller ever gets it.
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Several values in one round trip, in the order asked.
    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Adds `delta` (which may be negative) and returns the new count, atomically; the write
    /// that creates the counter starts its TTL.
    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> StoreResult<i64>;
    /// Adds one and returns the new count.
    async fn incr(&self, key: &str, ttl: Duration) -> StoreResult<i64> {
        self.add(key, 1, ttl).await
    }
    /// Adds `member` to the set at `key`; the write that creates the set starts its TTL.
    async fn add_member(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()>;
    /// The members of the set at `key`, each once, in no particular order.
    async fn members(&self, key: &str) -> StoreResult<Vec<String>>;
    async fn ping(&self) -> StoreResult<()>;
    /// Sends `message` to every node's subscribers of `channel` (this node's included).
    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()>;
    /// Messages published on `channel` from now on. The subscription survives reconnects; after
    /// one (when messages may have been missed) an empty message is delivered.
    fn subscribe(&self, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>;
    /// `memory`, `redis` or `redis cluster`, for the start-up log.
    fn backend(&self) -> &'static str;
}
