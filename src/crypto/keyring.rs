//! The node's view of the cluster's signing keys: parsed once, swapped atomically on change,
//! with the JWKS pre-serialized. Rotation is a compare-and-set on the durable store, so it
//! happens once per cluster however many nodes run the schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::kek::Kek;
use super::keys::{self, SigningKeyPair};
use super::rotation::{self, KeyState, Plan, Schedule};
use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::crypto::alg::SigningAlg;
use crate::store::{Durable, StoreError, StoredSigningKey};

/// Extra time a retired key stays published beyond the longest token lifetime (clock skew).
const RETENTION_SKEW: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kek(#[from] super::kek::KekError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
}

/// One consistent set of keys, as loaded at one moment.
pub struct KeySet {
    keys: Vec<LoadedKey>,
    pub jwks: Bytes,
    pub jwks_etag: String,
}

struct LoadedKey {
    stored: StoredSigningKey,
    pair: Arc<SigningKeyPair>,
    /// For verifying tokens this key signed, parsed once.
    verifier: Option<Arc<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>>,
}

fn verifier_for(public_jwk: &str) -> Option<Arc<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>> {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(public_jwk).ok()?;
    let alg = jwk.common.key_algorithm?.to_string().parse().ok()?;
    Some(Arc::new((jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?, alg)))
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    /// For retired keys: when they leave the JWKS.
    pub unpublish_at: Option<UnixTime>,
}

impl KeySet {
    fn times(&self, alg: SigningAlg) -> Vec<(String, UnixTime)> {
        self.keys.iter().filter(|k| k.stored.alg == alg).map(|k| (k.stored.kid.clone(), k.stored.activates_at)).collect()
    }

    /// The key that signs `alg` tokens at `now`.
    pub fn signer(&self, alg: SigningAlg, now: UnixTime) -> Option<Arc<SigningKeyPair>> {
        // Few keys per algorithm (next, active, a retired one or two): a scan beats a map.
        let mut best: Option<&LoadedKey> = None;
        for k in self.keys.iter().filter(|k| k.stored.alg == alg && k.stored.activates_at <= now) {
            if best.is_none_or(|b| (k.stored.activates_at, &k.stored.kid) > (b.stored.activates_at, &b.stored.kid)) {
                best = Some(k);
            }
        }
        best.map(|k| k.pair.clone())
    }

    pub fn public_jwk(&self, kid: &str) -> Option<&str> {
        self.keys.iter().find(|k| k.stored.kid == kid).map(|k| k.stored.public_jwk.as_str())
    }

    /// The parsed public key and algorithm of a published key.
    pub fn verifier(&self, kid: &str) -> Option<Arc<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>> {
        self.keys.iter().find(|k| k.stored.kid == kid).and_then(|k| k.verifier.clone())
    }

    pub fn info(&self, now: UnixTime, schedule: &Schedule) -> Vec<KeyInfo> {
        let mut out = Vec::new();
        for alg in SigningAlg::ALL {
            let times = self.times(alg);
            let mut sorted = times.clone();
            sorted.sort_by(|x, y| (x.1, &x.0).cmp(&(y.1, &y.0)));
            for (i, (kid, at)) in sorted.iter().enumerate() {
                let Some(state) = rotation::state_of(&times, kid, now) else { continue };
                let created_at = self.keys.iter().find(|k| &k.stored.kid == kid).map(|k| k.stored.created_at).unwrap_or(*at);
                let unpublish_at = (state == KeyState::Retired)
                    .then(|| sorted.get(i + 1).map(|(_, next)| next + schedule.retention.as_secs() as i64))
                    .flatten();
                out.push(KeyInfo { kid: kid.clone(), alg, state, created_at, activates_at: *at, unpublish_at });
            }
        }
        out
    }
}

pub struct KeyRing {
    store: Arc<dyn Durable>,
    kek: Arc<Kek>,
    clock: Arc<dyn Clock>,
    schedule: Schedule,
    current: ArcSwap<KeySet>,
    on_rotation: Box<dyn Fn(SigningAlg) + Send + Sync>,
}

impl KeyRing {
    pub fn schedule_from(config: &Config) -> Schedule {
        Schedule {
            rotation_interval: config.keys.rotation_interval,
            prepublish: config.keys.prepublish,
            retention: config.longest_signed_token() + RETENTION_SKEW,
        }
    }

    /// Loads the stored key set as it is.
    pub async fn open(
        store: Arc<dyn Durable>,
        kek: impl Into<Arc<Kek>>,
        clock: Arc<dyn Clock>,
        schedule: Schedule,
        on_rotation: Box<dyn Fn(SigningAlg) + Send + Sync>,
    ) -> Result<Self, KeyRingError> {
        let empty = KeySet { keys: vec![], jwks: Bytes::new(), jwks_etag: String::new() };
        let ring = Self { store, kek: kek.into(), clock, schedule, current: ArcSwap::from_pointee(empty), on_rotation };
        ring.reload().await?;
        Ok(ring)
    }

    /// Loads the key set and runs the schedule once, creating the first keys if the cluster has none.
    pub async fn start(
        store: Arc<dyn Durable>,
        kek: impl Into<Arc<Kek>>,
        clock: Arc<dyn Clock>,
        schedule: Schedule,
        on_rotation: Box<dyn Fn(SigningAlg) + Send + Sync>,
    ) -> Result<Self, KeyRingError> {
        let ring = Self::open(store, kek, clock, schedule, on_rotation).await?;
        ring.rotate_if_due().await?;
        Ok(ring)
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn signer(&self, alg: SigningAlg) -> Result<Arc<SigningKeyPair>, KeyRingError> {
        self.current.load().signer(alg, self.clock.now()).ok_or(KeyRingError::NoActiveKey(alg))
    }

    pub fn info(&self) -> Vec<KeyInfo> {
        self.current.load().info(self.clock.now(), &self.schedule)
    }

    /// Re-reads the stored keys; parses only keys not seen before.
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        let stored = self.store.signing_keys().await?;
        let previous = self.current.load();
        let unchanged = stored.len() == previous.keys.len()
            && stored.iter().all(|s| previous.keys.iter().any(|k| k.stored.kid == s.kid && k.stored.activates_at == s.activates_at));
        if unchanged {
            return Ok(());
        }
        let known: HashMap<&str, &LoadedKey> = previous.keys.iter().map(|k| (k.stored.kid.as_str(), k)).collect();
        let mut loaded = Vec::with_capacity(stored.len());
        for s in stored {
            let (pair, verifier) = match known.get(s.kid.as_str()) {
                Some(k) => (Arc::clone(&k.pair), k.verifier.clone()),
                None => {
                    let der = self.kek.open(&s.kid, &s.private_key_sealed)?;
                    (Arc::new(SigningKeyPair::from_pkcs8(&s.kid, s.alg, &der)?), verifier_for(&s.public_jwk))
                }
            };
            loaded.push(LoadedKey { stored: s, pair, verifier });
        }
        let (jwks, jwks_etag) = serialize_jwks(&loaded);
        self.current.store(Arc::new(KeySet { keys: loaded, jwks, jwks_etag }));
        Ok(())
    }

    /// Runs the schedule for every algorithm; only touches the store when something is due.
    pub async fn rotate_if_due(&self) -> Result<(), KeyRingError> {
        for alg in SigningAlg::ALL {
            let now = self.clock.now();
            if rotation::plan(&self.current.load().times(alg), now, &self.schedule).is_empty() {
                continue;
            }
            self.apply(alg, rotation::plan).await?;
        }
        Ok(())
    }

    /// Schedules a successor for every algorithm that has none pending: it activates after the
    /// pre-publication period, or at once with `immediately` (for a compromised key).
    pub async fn rotate_now(&self, immediately: bool) -> Result<(), KeyRingError> {
        for alg in SigningAlg::ALL {
            self.apply(alg, |times, now, schedule| {
                let pending = times.iter().any(|(_, a)| *a > now);
                // An immediate key must outrank a key that activated this very second.
                let newest_active = times.iter().map(|(_, a)| *a).filter(|a| *a <= now).max();
                let at = if immediately {
                    newest_active.map_or(now, |a| now.max(a + 1))
                } else {
                    now + schedule.prepublish.as_secs() as i64
                };
                Plan { create_activating_at: (immediately || !pending).then_some(at), purge: vec![] }
            })
            .await?;
        }
        Ok(())
    }

    /// Reads the generation, then the keys, plans, and commits the plan only if the generation
    /// is unchanged; a node that loses the race reloads and re-plans from what the winner wrote.
    async fn apply(&self, alg: SigningAlg, planner: impl Fn(&[(String, UnixTime)], UnixTime, &Schedule) -> Plan) -> Result<(), KeyRingError> {
        for _ in 0..3 {
            let generation = self.store.key_generation(alg).await?;
            self.reload().await?;
            let now = self.clock.now();
            let plan = planner(&self.current.load().times(alg), now, &self.schedule);
            if plan.is_empty() {
                return Ok(());
            }
            let new_key = match plan.create_activating_at {
                Some(activates_at) => Some(self.new_stored_key(alg, now, activates_at).await?),
                None => None,
            };
            if self.store.change_keys(alg, generation, new_key.as_ref(), &plan.purge).await? {
                if let Some(k) = &new_key {
                    tracing::info!(kid = %k.kid, %alg, activates_at = k.activates_at, "signing key created");
                    (self.on_rotation)(alg);
                }
                for kid in &plan.purge {
                    tracing::info!(%kid, %alg, "retired signing key purged");
                }
                self.reload().await?;
                return Ok(());
            }
            tracing::debug!(%alg, "another node changed the key set first; re-planning");
        }
        self.reload().await
    }

    async fn new_stored_key(&self, alg: SigningAlg, now: UnixTime, activates_at: UnixTime) -> Result<StoredSigningKey, KeyRingError> {
        // RSA generation takes tens of milliseconds of CPU: keep it off the async workers.
        let generated = tokio::task::spawn_blocking(move || keys::generate(alg))
            .await
            .map_err(|e| keys::KeyError::Generate(e.to_string()))??;
        Ok(StoredSigningKey {
            private_key_sealed: self.kek.seal(&generated.kid, &generated.pkcs8_der)?,
            kid: generated.kid,
            alg,
            public_jwk: generated.public_jwk.to_string(),
            created_at: now,
            activates_at,
        })
    }
}

fn serialize_jwks(keys: &[LoadedKey]) -> (Bytes, String) {
    let mut body = String::from("{\"keys\":[");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&k.stored.public_jwk);
    }
    body.push_str("]}");
    let digest = Sha256::digest(body.as_bytes());
    let etag = format!("\"{}\"", digest[..12].iter().map(|b| format!("{b:02x}")).collect::<String>());
    (Bytes::from(body), etag)
}
