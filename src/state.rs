//! Everything a request handler may need, built once at start. No globals.

use std::sync::Arc;

use crate::api_keys::cache::ApiKeyCache;
use crate::cache::TtlCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::kek::Kek;
use crate::crypto::keyring::KeyRing;
use crate::crypto::password::Passwords;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::oauth::client_jwks::ClientJwksCache;
use crate::oidc::metadata::Discovery;
use crate::outbound::OutboundHttp;
use crate::store::{Client, Durable, Ephemeral, StoreResult};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub durable: Arc<dyn Durable>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub keys: Arc<KeyRing>,
    /// The key-encryption key: signing keys' private parts and TOTP secrets are sealed under it.
    pub kek: Arc<Kek>,
    pub passwords: Passwords,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub discovery: Arc<Discovery>,
    pub client_jwks: Arc<ClientJwksCache>,
    /// The identity providers people may sign in through, with their cached metadata.
    pub upstreams: Arc<crate::upstream::Upstreams>,
    pub api_key_cache: Arc<ApiKeyCache>,
    pub client_cache: Arc<TtlCache<String, Option<Client>>>,
    pub lifecycle: Arc<Lifecycle>,
    /// The WebAuthn relying party (the issuer's host and origin); none when the issuer is on an
    /// IP address, where browsers offer no passkeys.
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Back-channel logout deliveries: to any address (the URIs are registered by
    /// administrators, and a company's apps usually live on its private networks).
    pub backchannel_http: Arc<OutboundHttp>,
    /// Wakes this node's logout worker when it enqueued something.
    pub logout_wakeup: Arc<tokio::sync::Notify>,
    /// `tls.client_ca_file`: the CAs of `tls_client_auth` clients' certificates.
    pub client_ca: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A client by id, through a one-second cache: admin changes show within a second.
    pub async fn client(&self, id: &str) -> StoreResult<Option<Client>> {
        if let Some(cached) = self.client_cache.get(&id.to_string()) {
            return Ok(cached);
        }
        let found = self.durable.client(id).await?;
        self.client_cache.insert(id.to_string(), found.clone());
        Ok(found)
    }
}
