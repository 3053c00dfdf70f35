//! A provider's discovery document and key set: fetched at first use, kept for an hour, and
//! fetched again early (at most once a minute) when an ID token names a key we do not have,
//! which is how a provider's key rotation reaches us.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl, ProviderMetadata};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::error::UpstreamError;
use super::http::ProviderHttp;
use crate::outbound::OutboundHttp;

/// How long a discovery document and key set are used before they are fetched again.
const FRESH_FOR: Duration = Duration::from_secs(3600);
/// The soonest an unknown key may make us fetch them again.
const EARLY_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// RFC 9207: whether the provider names itself (`iss`) in its authorization responses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssParameter {
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for IssParameter {}

pub type Metadata = ProviderMetadata<
    IssParameter,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

struct Cached {
    metadata: Arc<Metadata>,
    fetched_at: Instant,
}

#[derive(Default)]
pub struct MetadataCache {
    /// Held while fetching, so concurrent sign-ins wait for one fetch instead of each making one.
    slot: Mutex<Option<Cached>>,
}

impl MetadataCache {
    /// The provider's metadata; `stale_key` asks for a fresh copy (an unknown signing key),
    /// granted when the cached one is at least a minute old.
    pub async fn get(&self, issuer: &str, http: &OutboundHttp, stale_key: bool) -> Result<Arc<Metadata>, UpstreamError> {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref() {
            let age = cached.fetched_at.elapsed();
            let wanted_early = stale_key && age >= EARLY_REFRESH_EVERY;
            if age < FRESH_FOR && !wanted_early {
                return Ok(cached.metadata.clone());
            }
        }
        match fetch(issuer, http).await {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                *slot = Some(Cached { metadata: metadata.clone(), fetched_at: Instant::now() });
                Ok(metadata)
            }
            // A provider briefly unreachable: the copy we have still serves.
            Err(e) => match slot.as_ref() {
                Some(cached) => {
                    tracing::warn!(issuer, error = %e.detail(), "could not refresh an identity provider's metadata; using the cached copy");
                    Ok(cached.metadata.clone())
                }
                None => Err(e),
            },
        }
    }
}

/// Discovery, with the issuer check `openidconnect` makes (the document must name the issuer
/// we asked), then the key set.
async fn fetch(issuer: &str, http: &OutboundHttp) -> Result<Metadata, UpstreamError> {
    let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|e| UpstreamError::Unreachable(format!("issuer {issuer}: {e}")))?;
    Metadata::discover_async(issuer_url, &ProviderHttp(http)).await.map_err(|e| UpstreamError::Unreachable(format!("discovery of {issuer}: {}", chain(&e))))
}

/// An error and its causes on one line (the crates' top-level messages name no cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
