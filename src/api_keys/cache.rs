//! The in-process cache of API key records, emptied on every node when a key is revoked or
//! rotated (a message on the ephemeral store's bus).

use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlCache;
use crate::store::{ApiKey, Ephemeral};

const MAX_ENTRIES: usize = 10_000;
pub const INVALIDATION_CHANNEL: &str = "apikeys:invalidate";

/// API key records by hash; `None` records a hash that matches no key (so made-up keys do not
/// each cost a query).
pub type ApiKeyCache = TtlCache<Vec<u8>, Option<ApiKey>>;

pub fn new_cache(ttl: Duration) -> ApiKeyCache {
    TtlCache::new(ttl, MAX_ENTRIES)
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
