//! The in-process ephemeral store of the embedded default. Single node only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Ephemeral;
use crate::store::StoreResult;

/// Sweep expired entries once this many writes have happened since the last sweep.
const SWEEP_EVERY: usize = 1024;

pub struct MemoryStore {
    inner: Mutex<Inner>,
    bus: tokio::sync::broadcast::Sender<(String, Vec<u8>)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { inner: Mutex::default(), bus: tokio::sync::broadcast::channel(256).0 }
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    writes_since_sweep: usize,
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner, Instant) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-operation on a HashMap,
        // which leaves it structurally valid; keep serving.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner, Instant::now())
    }
}

impl Inner {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| e.expires <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn insert(&mut self, key: &str, value: Vec<u8>, expires: Instant, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.entries.retain(|_, e| e.expires > now);
            self.writes_since_sweep = 0;
        }
        self.entries.insert(key.to_string(), Entry { value, expires });
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        self.with(|inner, now| inner.insert(key, value.to_vec(), now + ttl, now));
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        Ok(self.with(|inner, now| {
            if inner.live(key, now).is_some() {
                return false;
            }
            inner.insert(key, value.to_vec(), now + ttl, now);
            true
        }))
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|inner, now| {
            inner.live(key, now)?;
            inner.entries.remove(key).map(|e| e.value)
        }))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|inner, now| inner.live(key, now).map(|e| e.value.clone())))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.with(|inner, _| inner.entries.remove(key));
        Ok(())
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> StoreResult<i64> {
        Ok(self.with(|inner, now| {
            if let Some(entry) = inner.live(key, now) {
                let count = parse_count(&entry.value) + delta;
                entry.value = count.to_string().into_bytes();
                count
            } else {
                inner.insert(key, delta.to_string().into_bytes(), now + ttl, now);
                delta
            }
        }))
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()> {
        // No subscribers is not an error.
        let _ = self.bus.send((channel.to_string(), message.to_vec()));
        Ok(())
    }

    fn subscribe(&self, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut bus = self.bus.subscribe();
        let channel = channel.to_string();
        tokio::spawn(async move {
            loop {
                let message = match bus.recv().await {
                    Ok((c, m)) if c == channel => m,
                    Ok(_) => continue,
                    // Fell behind: some messages are lost, say so.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

fn parse_count(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}
