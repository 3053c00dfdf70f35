//! Client key sets for `private_key_jwt`: the registered JWKS, or the client's `jwks_uri`
//! fetched (through [`OutboundHttp`]) and remembered per URI. Whatever the server at a
//! `jwks_uri` does, it costs sesame at most one fetch per URI per [`REFETCH_AFTER`]: a failure
//! is remembered for [`FAILURE_TTL`], concurrent requests share one fetch, and the number of
//! URIs being fetched at once is bounded.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use jsonwebtoken::jwk::JwkSet;

use crate::outbound::{Destinations, OutboundError, OutboundHttp};
use crate::store::Client;

const MAX_ENTRIES: usize = 1024;
const MAX_AGE: Duration = Duration::from_secs(300);
/// An unknown kid triggers at most one refetch per this interval (a key-rotation grace, not a DoS lever).
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// A failed fetch is the answer for this long; requests in the meantime fail without a fetch.
const FAILURE_TTL: Duration = Duration::from_secs(30);
/// Distinct URIs being fetched at once; beyond them a request fails instead of queueing.
const MAX_IN_FLIGHT: usize = 64;
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksError {
    #[error("the client has no keys registered")]
    NoKeys,
    #[error("the client's jwks_uri could not be fetched: {0}")]
    Fetch(#[from] OutboundError),
    #[error("the client's key set is not a valid JWK Set")]
    Invalid,
    #[error("the client's jwks_uri failed {}s ago (not tried again for {}s): {cause}", .ago.as_secs(), FAILURE_TTL.as_secs())]
    FailedRecently { ago: Duration, cause: Box<JwksError> },
    #[error("too many client key sets are being fetched at once")]
    Busy,
    #[error("the fetch of the client's jwks_uri stopped unexpectedly")]
    Abandoned,
}

pub struct ClientJwksCache {
    inner: Arc<Inner>,
}

struct Inner {
    http: OutboundHttp,
    uris: Mutex<Uris>,
}

#[derive(Default)]
struct Uris {
    /// The last outcome of each URI's fetch.
    outcomes: HashMap<String, Outcome>,
    /// Fetches under way; whoever needs the same URI awaits the same one.
    in_flight: HashMap<String, Flight>,
}

#[derive(Clone)]
struct Outcome {
    at: Instant,
    result: Result<Arc<JwkSet>, JwksError>,
}

type Flight = Shared<BoxFuture<'static, Outcome>>;

impl ClientJwksCache {
    pub fn new(destinations: Destinations) -> reqwest::Result<Self> {
        Ok(Self { inner: Arc::new(Inner { http: OutboundHttp::new(destinations)?, uris: Mutex::default() }) })
    }

    /// The client's keys; with `kid`, refetches a remote set once if it lacks that key.
    pub async fn keys(&self, client: &Client, kid: Option<&str>) -> Result<Arc<JwkSet>, JwksError> {
        if let Some(text) = &client.jwks {
            return serde_json::from_str(text).map(Arc::new).map_err(|_| JwksError::Invalid);
        }
        let uri = client.jwks_uri.as_deref().ok_or(JwksError::NoKeys)?;
        let flight = {
            let mut uris = self.inner.uris.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(answer) = uris.outcomes.get(uri).and_then(|o| o.answer(kid, Instant::now())) {
                return answer;
            }
            match uris.in_flight.get(uri) {
                Some(flight) => flight.clone(),
                None if uris.in_flight.len() >= MAX_IN_FLIGHT => return Err(JwksError::Busy),
                None => {
                    let flight = self.inner.start_fetch(uri.to_string());
                    uris.in_flight.insert(uri.to_string(), flight.clone());
                    flight
                }
            }
        };
        flight.await.result
    }
}

impl Outcome {
    /// What to answer without fetching, or `None` when a fetch is due.
    fn answer(&self, kid: Option<&str>, now: Instant) -> Option<Result<Arc<JwkSet>, JwksError>> {
        let age = now.saturating_duration_since(self.at);
        match &self.result {
            Ok(set) => {
                let knows_kid = kid.is_none_or(|k| set.find(k).is_some());
                let fresh = if knows_kid { age < MAX_AGE } else { age < REFETCH_AFTER };
                fresh.then(|| Ok(set.clone()))
            }
            Err(e) => (age < FAILURE_TTL).then(|| Err(JwksError::FailedRecently { ago: age, cause: Box::new(e.clone()) })),
        }
    }

    fn still_useful(&self, now: Instant) -> bool {
        let age = now.saturating_duration_since(self.at);
        age < if self.result.is_ok() { MAX_AGE } else { FAILURE_TTL }
    }
}

impl Inner {
    /// Fetches on a task of its own, so the outcome is recorded even if every request awaiting
    /// it goes away.
    fn start_fetch(self: &Arc<Self>, uri: String) -> Flight {
        let inner = self.clone();
        let task = tokio::spawn(async move {
            let result = AssertUnwindSafe(inner.fetch(&uri)).catch_unwind().await.unwrap_or(Err(JwksError::Abandoned));
            let outcome = Outcome { at: Instant::now(), result };
            inner.record(uri, outcome.clone());
            outcome
        });
        async move { task.await.unwrap_or_else(|_| Outcome { at: Instant::now(), result: Err(JwksError::Abandoned) }) }.boxed().shared()
    }

    async fn fetch(&self, uri: &str) -> Result<Arc<JwkSet>, JwksError> {
        let body = self.http.get(uri, MAX_BODY).await?;
        serde_json::from_slice(&body).map(Arc::new).map_err(|_| JwksError::Invalid)
    }

    fn record(&self, uri: String, outcome: Outcome) {
        let mut uris = self.uris.lock().unwrap_or_else(|p| p.into_inner());
        uris.in_flight.remove(&uri);
        let outcomes = &mut uris.outcomes;
        if outcomes.len() >= MAX_ENTRIES && !outcomes.contains_key(&uri) {
            let now = Instant::now();
            outcomes.retain(|_, o| o.still_useful(now));
            if outcomes.len() >= MAX_ENTRIES {
                let oldest = outcomes.iter().min_by_key(|(_, o)| o.at).map(|(k, _)| k.clone());
                outcomes.remove(&oldest.unwrap_or_default());
            }
        }
        outcomes.insert(uri, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_with(kid: &str) -> Arc<JwkSet> {
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        Arc::new(serde_json::from_value(serde_json::json!({"keys": [jwk]})).unwrap())
    }

    #[test]
    fn a_known_kid_is_served_from_memory_until_the_set_is_old() {
        let t0 = Instant::now();
        let outcome = Outcome { at: t0, result: Ok(set_with("a")) };
        assert!(matches!(outcome.answer(Some("a"), t0 + MAX_AGE - Duration::from_secs(1)), Some(Ok(_))));
        assert!(outcome.answer(Some("a"), t0 + MAX_AGE).is_none());
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let t0 = Instant::now();
        let outcome = Outcome { at: t0, result: Ok(set_with("a")) };
        assert!(matches!(outcome.answer(Some("b"), t0 + REFETCH_AFTER - Duration::from_secs(1)), Some(Ok(_))), "the set as it is; the kid is not in it");
        assert!(outcome.answer(Some("b"), t0 + REFETCH_AFTER).is_none());
    }

    #[test]
    fn a_failure_is_the_answer_until_it_expires() {
        let t0 = Instant::now();
        let outcome = Outcome { at: t0, result: Err(JwksError::Fetch(OutboundError::Status(500))) };
        let answer = outcome.answer(None, t0 + Duration::from_secs(3));
        assert!(matches!(answer, Some(Err(JwksError::FailedRecently { ref cause, .. })) if matches!(**cause, JwksError::Fetch(OutboundError::Status(500)))), "{answer:?}");
        assert!(outcome.answer(None, t0 + FAILURE_TTL).is_none());
    }
}
