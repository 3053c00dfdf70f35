//! Everything a request handler may need, built once at start. No globals.

use std::sync::Arc;

use crate::apikeys::cache::ApiKeyCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::keyring::KeyRing;
use crate::crypto::password::Passwords;
use crate::metrics::Metrics;
use crate::oauth::client_jwks::ClientJwksCache;
use crate::oidc::discovery::Discovery;
use crate::store::{Durable, Ephemeral};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub durable: Arc<dyn Durable>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub keys: Arc<KeyRing>,
    pub passwords: Passwords,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub discovery: Arc<Discovery>,
    pub client_jwks: Arc<ClientJwksCache>,
    pub api_key_cache: Arc<ApiKeyCache>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
