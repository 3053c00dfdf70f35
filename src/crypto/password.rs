//! User passwords: Argon2id on a small pool of dedicated threads (as many as
//! `password.max_concurrent`), each reusing its own memory blocks. A login flood queues here: it
//! cannot starve the async runtime or grow memory beyond `max_concurrent` x `memory_kib`.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::config::PasswordConfig;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct Passwords {
    params: Params,
    jobs: Arc<Mutex<Sender<Job>>>,
    /// Jobs queued or running, and how many may be.
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    /// A real hash of a random password, verified against when a user does not exist,
    /// so that the answer takes as long for unknown users as for known ones.
    dummy_hash: Arc<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every worker is busy and the queue is full: try again shortly.
    #[error("too many password checks at once")]
    Busy,
}

impl Passwords {
    pub fn new(config: &PasswordConfig) -> Result<Self, PasswordError> {
        let params = Params::new(config.memory_kib, config.iterations, config.parallelism, None)
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let dummy_hash = hash_with(&params, &crate::crypto::secrets::generate_secret())?;
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..config.max_concurrent.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx))
                .map_err(|e| PasswordError::Hash(e.to_string()))?;
        }
        let capacity = config.max_concurrent.max(1) + config.max_queue;
        Ok(Self { params, jobs: Arc::new(Mutex::new(tx)), in_flight: Arc::new(AtomicUsize::new(0)), capacity, dummy_hash: Arc::new(dummy_hash) })
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.to_string();
        self.run(move |_| hash_with(&params, &password)).await?
    }

    /// Verifies `password` against `hash`, or against a dummy hash when there is no user.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash = hash.map(str::to_string).unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_string();
        let ok = self.run(move |blocks| verify_with(&password, &hash, blocks)).await?;
        Ok(ok && known)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> Result<T, PasswordError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        let (tx, rx) = oneshot::channel();
        let in_flight = self.in_flight.clone();
        let job: Job = Box::new(move |blocks| {
            let _ = tx.send(work(blocks));
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                PasswordError::Hash("password workers stopped".into())
            })?;
        rx.await.map_err(|_| PasswordError::Hash("password worker failed".into()))
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    let mut blocks = Vec::new();
    loop {
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        job(&mut blocks);
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Recomputes the stored hash's Argon2 (its own parameters, so old hashes verify after a cost
/// change) in `blocks`, and compares in constant time.
fn verify_with(password: &str, hash: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) =
        (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..params.block_count()]).is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_says_busy_instead_of_waiting() {
        // One worker, one waiting place; slow enough hashes that the rest find the queue full.
        let passwords = Passwords::new(&PasswordConfig { memory_kib: 8 * 1024, iterations: 3, max_concurrent: 1, max_queue: 1, ..cheap() }).unwrap();
        let hash = passwords.hash("right").await.unwrap();
        let checks: Vec<_> = (0..12)
            .map(|_| {
                let (p, h) = (passwords.clone(), hash.clone());
                tokio::spawn(async move { p.verify("right", Some(&h)).await })
            })
            .collect();
        let (mut ok, mut busy) = (0, 0);
        for c in checks {
            match c.await.unwrap() {
                Ok(true) => ok += 1,
                Err(PasswordError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
        assert!(passwords.verify("right", Some(&hash)).await.unwrap(), "the queue drains: a later check runs");
    }

    fn cheap() -> PasswordConfig {
        PasswordConfig { memory_kib: 64, iterations: 1, parallelism: 1, max_concurrent: 2, max_queue: 64 }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let p = Passwords::new(&cheap()).unwrap();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong", Some(&h)).await.unwrap());
        assert!(!p.verify("correct horse", None).await.unwrap());
        assert!(!p.verify("x", Some("not a hash")).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_with_other_costs_still_verify() {
        let old = Passwords::new(&PasswordConfig { memory_kib: 128, iterations: 2, ..cheap() }).unwrap();
        let h = old.hash("correct horse").await.unwrap();
        let current = Passwords::new(&cheap()).unwrap();
        assert!(current.verify("correct horse", Some(&h)).await.unwrap());
        // Cross-check with the crate's own verifier.
        use argon2::password_hash::PasswordVerifier;
        assert!(Argon2::default().verify_password(b"correct horse", &PasswordHash::new(&h).unwrap()).is_ok());
    }
}
