//! The ephemeral store behind its gate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::gate::{Gate, Probe};
use crate::store::{Ephemeral, StoreResult};

pub struct GuardedEphemeral {
    inner: Arc<dyn Ephemeral>,
    gate: Gate,
}

impl GuardedEphemeral {
    pub fn new(inner: Arc<dyn Ephemeral>, budget: Duration) -> Self {
        let pinged = inner.clone();
        let probe: Probe = Arc::new(move || {
            let store = pinged.clone();
            Box::pin(async move { store.ping().await })
        });
        Self { inner, gate: Gate::new("the ephemeral store", budget, probe) }
    }

    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }
}

#[async_trait]
impl Ephemeral for GuardedEphemeral {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        self.gate.run(self.inner.put(key, value, ttl)).await
    }
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        self.gate.run(self.inner.put_if_absent(key, value, ttl)).await
    }
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.gate.run(self.inner.take(key)).await
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.gate.run(self.inner.get(key)).await
    }
    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.gate.run(self.inner.get_many(keys)).await
    }
    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.gate.run(self.inner.delete(key)).await
    }
    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> StoreResult<i64> {
        self.gate.run(self.inner.add(key, delta, ttl)).await
    }
    async fn add_member(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        self.gate.run(self.inner.add_member(key, member, ttl)).await
    }
    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.gate.run(self.inner.members(key)).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.gate.run(self.inner.ping()).await
    }
    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()> {
        self.gate.run(self.inner.publish(channel, message)).await
    }
    fn subscribe(&self, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
        self.inner.subscribe(channel)
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
