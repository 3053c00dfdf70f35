//! Client key sets for `private_key_jwt`: the registered JWKS, or the client's `jwks_uri`
//! fetched and cached (bounded in size and age; an unknown `kid` refetches, rate-limited).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::store::Client;

const MAX_ENTRIES: usize = 1024;
const MAX_AGE: Duration = Duration::from_secs(300);
/// An unknown kid triggers at most one refetch per this interval (a key-rotation grace, not a DoS lever).
const REFETCH_AFTER: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 256 * 1024;

pub struct ClientJwksCache {
    http: reqwest::Client,
    entries: Mutex<HashMap<String, (Instant, JwkSet)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the client has no keys registered")]
    NoKeys,
    #[error("the client's jwks_uri could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's key set is not a valid JWK Set")]
    Invalid,
}

impl ClientJwksCache {
    pub fn new() -> Self {
        // reqwest is built without a TLS provider of its own: aws-lc, as for everything else.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { http, entries: Mutex::new(HashMap::new()) }
    }

    /// The client's keys; with `kid`, refetches a remote set once if it lacks that key.
    pub async fn keys(&self, client: &Client, kid: Option<&str>) -> Result<JwkSet, JwksError> {
        if let Some(text) = &client.jwks {
            return serde_json::from_str(text).map_err(|_| JwksError::Invalid);
        }
        let uri = client.jwks_uri.as_deref().ok_or(JwksError::NoKeys)?;
        if let Some((fetched, set)) = self.cached(uri) {
            let knows_kid = kid.is_none_or(|k| set.find(k).is_some());
            if knows_kid && fetched.elapsed() < MAX_AGE {
                return Ok(set);
            }
            if !knows_kid && fetched.elapsed() < REFETCH_AFTER {
                return Ok(set);
            }
        }
        let set = self.fetch(uri).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < MAX_AGE);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(uri.to_string(), (Instant::now(), set.clone()));
        Ok(set)
    }

    fn cached(&self, uri: &str) -> Option<(Instant, JwkSet)> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(uri).cloned()
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, JwksError> {
        let res = self.http.get(uri).send().await.map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(JwksError::Fetch(format!("status {}", res.status())));
        }
        if res.content_length().is_some_and(|n| n as usize > MAX_BODY) {
            return Err(JwksError::Fetch("key set too large".into()));
        }
        let body = res.bytes().await.map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
        if body.len() > MAX_BODY {
            return Err(JwksError::Fetch("key set too large".into()));
        }
        serde_json::from_slice(&body).map_err(|_| JwksError::Invalid)
    }
}

impl Default for ClientJwksCache {
    fn default() -> Self {
        Self::new()
    }
}
