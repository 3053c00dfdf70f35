//! A bounded, short-lived in-process cache of API key records by hash, emptied on every node
//! when a key is revoked or rotated (a message on the ephemeral store's bus).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{ApiKey, Ephemeral};

const MAX_ENTRIES: usize = 10_000;
pub const INVALIDATION_CHANNEL: &str = "apikeys:invalidate";

pub struct ApiKeyCache {
    ttl: Duration,
    /// `None` records a hash that matches no key (so made-up keys do not each cost a query).
    entries: Mutex<HashMap<Vec<u8>, (Instant, Option<ApiKey>)>>,
}

impl ApiKeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, hash: &[u8]) -> Option<Option<ApiKey>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(hash).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, key)| key.clone())
    }

    pub fn insert(&self, hash: Vec<u8>, key: Option<ApiKey>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (Instant::now(), key));
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Tells every node (this one included) to forget cached keys.
pub async fn broadcast_invalidation(ephemeral: &dyn Ephemeral) -> crate::store::StoreResult<()> {
    ephemeral.publish(INVALIDATION_CHANNEL, b"*").await
}

/// Empties `cache` whenever any node announces a change.
pub fn spawn_invalidation_listener(ephemeral: &dyn Ephemeral, cache: Arc<ApiKeyCache>) -> tokio::task::JoinHandle<()> {
    let mut messages = ephemeral.subscribe(INVALIDATION_CHANNEL);
    tokio::spawn(async move {
        while messages.recv().await.is_some() {
            cache.clear();
        }
    })
}
