//! The in-process ephemeral store of the embedded default. Single node only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Ephemeral;
use crate::store::{StoreError, StoreResult};

/// Sweep expired entries once this many writes have happened since the last sweep.
const SWEEP_EVERY: usize = 1024;
/// What an entry costs beyond its key and value (map slot, expiry, allocations), roughly.
const ENTRY_OVERHEAD: usize = 64;
/// The default memory ceiling (`memory_store_max_mib`): far above what a single node's
/// sessions, codes and counters use.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

pub struct MemoryStore {
    inner: Mutex<Inner>,
    bus: tokio::sync::broadcast::Sender<(String, Vec<u8>)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_ceiling(DEFAULT_MAX_BYTES)
    }
}

struct Inner {
    entries: HashMap<String, Entry>,
    writes_since_sweep: usize,
    /// What the entries cost, and the most they may: a write beyond it is refused (503), so
    /// a flood of anonymous requests cannot grow the process without bound.
    bytes: usize,
    max_bytes: usize,
}

fn cost(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

/// The store is at its ceiling even after dropping what expired.
struct Full;

impl From<Full> for StoreError {
    fn from(_: Full) -> Self {
        StoreError::Unavailable("the in-process store is full".into())
    }
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that refuses writes beyond `max_bytes` of entries.
    pub fn with_ceiling(max_bytes: usize) -> Self {
        let inner = Inner { entries: HashMap::new(), writes_since_sweep: 0, bytes: 0, max_bytes };
        Self { inner: Mutex::new(inner), bus: tokio::sync::broadcast::channel(256).0 }
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
            self.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes -= cost(key, &entry.value);
        Some(entry)
    }

    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
        self.bytes = self.entries.iter().map(|(k, e)| cost(k, &e.value)).sum();
        self.writes_since_sweep = 0;
    }

    fn insert(&mut self, key: &str, value: Vec<u8>, expires: Instant, now: Instant) -> Result<(), Full> {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.sweep(now);
        }
        let replaced = self.entries.get(key).map_or(0, |e| cost(key, &e.value));
        let added = cost(key, &value);
        if self.bytes - replaced + added > self.max_bytes {
            self.sweep(now);
            let replaced = self.entries.get(key).map_or(0, |e| cost(key, &e.value));
            if self.bytes - replaced + added > self.max_bytes {
                return Err(Full);
            }
        }
        let replaced = self.entries.get(key).map_or(0, |e| cost(key, &e.value));
        self.bytes = self.bytes - replaced + added;
        self.entries.insert(key.to_string(), Entry { value, expires });
        Ok(())
    }

    /// Rewrites a live entry's value in place (a counter), keeping the ledger.
    fn set_value(&mut self, key: &str, value: Vec<u8>) {
        if let Some(entry) = self.entries.get_mut(key) {
            self.bytes = self.bytes - entry.value.len() + value.len();
            entry.value = value;
        }
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        Ok(self.with(|inner, now| inner.insert(key, value.to_vec(), now + ttl, now))?)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        Ok(self.with(|inner, now| {
            if inner.live(key, now).is_some() {
                return Ok(false);
            }
            inner.insert(key, value.to_vec(), now + ttl, now).map(|()| true)
        })?)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|inner, now| {
            inner.live(key, now)?;
            inner.remove(key).map(|e| e.value)
        }))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|inner, now| inner.live(key, now).map(|e| e.value.clone())))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.with(|inner, _| inner.remove(key));
        Ok(())
    }

    async fn add(&self, key: &str, delta: i64, ttl: Duration) -> StoreResult<i64> {
        Ok(self.with(|inner, now| {
            if let Some(entry) = inner.live(key, now) {
                let count = parse_count(&entry.value) + delta;
                inner.set_value(key, count.to_string().into_bytes());
                Ok(count)
            } else {
                inner.insert(key, delta.to_string().into_bytes(), now + ttl, now).map(|()| delta)
            }
        })?)
    }

    /// A set is one entry holding its members one per line; a member added twice is stored
    /// twice and read once (members are added about once per minute each: no scan on write).
    async fn add_member(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        Ok(self.with(|inner, now| {
            if let Some(entry) = inner.live(key, now) {
                let mut value = entry.value.clone();
                value.extend_from_slice(member.as_bytes());
                value.push(b'\n');
                let added = member.len() + 1;
                if inner.bytes + added > inner.max_bytes {
                    inner.sweep(now);
                    if inner.bytes + added > inner.max_bytes {
                        return Err(Full);
                    }
                }
                inner.set_value(key, value);
                Ok(())
            } else {
                inner.insert(key, format!("{member}\n").into_bytes(), now + ttl, now)
            }
        })?)
    }

    async fn members(&self, key: &str) -> StoreResult<Vec<String>> {
        let value = self.with(|inner, now| inner.live(key, now).map(|e| e.value.clone())).unwrap_or_default();
        let text = String::from_utf8_lossy(&value);
        let unique: std::collections::BTreeSet<&str> = text.lines().filter(|m| !m.is_empty()).collect();
        Ok(unique.into_iter().map(str::to_string).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_beyond_the_ceiling_are_refused_until_space_is_freed() {
        let store = MemoryStore::with_ceiling(10 * (ENTRY_OVERHEAD + 100));
        let value = vec![7u8; 96];
        let ttl = Duration::from_secs(60);
        let mut stored = 0;
        for i in 0..20 {
            match store.put(&format!("k{i:03}"), &value, ttl).await {
                Ok(()) => stored += 1,
                Err(StoreError::Unavailable(why)) => assert!(why.contains("full")),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(stored, 10, "ten entries of 100 bytes each fit, no more");
        assert!(store.put_if_absent("other", &value, ttl).await.is_err());
        assert!(store.incr("counter", ttl).await.is_err(), "counters count too");
        // Overwriting costs nothing new; deleting and taking give space back.
        store.put("k000", &value, ttl).await.unwrap();
        store.delete("k001").await.unwrap();
        assert_eq!(store.take("k002").await.unwrap().as_deref(), Some(&value[..]));
        store.put("new1", &value, ttl).await.unwrap();
        store.put("new2", &value, ttl).await.unwrap();
        assert!(store.put("new3", &value, ttl).await.is_err());
    }

    #[tokio::test]
    async fn expired_entries_make_room() {
        let store = MemoryStore::with_ceiling(2 * (ENTRY_OVERHEAD + 10));
        store.put("a", b"12345678", Duration::from_millis(1)).await.unwrap();
        store.put("b", b"12345678", Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        store.put("c", b"12345678", Duration::from_secs(60)).await.unwrap();
        store.put("d", b"12345678", Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.get("c").await.unwrap().as_deref(), Some(&b"12345678"[..]));
    }
}
