//! What sesame remembers between sending the browser to a provider and its return: kept in the
//! ephemeral store under the hash of `state`, taken once at the callback (a replayed callback
//! finds nothing), bound to the pending authorization request and to the browser.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::secrets::hash_hex;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub provider_id: String,
    /// The pending authorization request this sign-in is for.
    pub request_id: String,
    /// SHA-256 of the browser binding (`BrowserCookie`) of the browser that left.
    pub browser: String,
    /// OpenID Connect only.
    pub nonce: Option<String>,
    pub pkce_verifier: String,
    pub created_at: UnixTime,
}

fn key(state_param: &str) -> String {
    format!("upstream:{}", hash_hex(state_param))
}

pub async fn save(state: &AppState, state_param: &str, attempt: &Attempt) -> Result<(), AppError> {
    let bytes = serde_json::to_vec(attempt).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&key(state_param), &bytes, state.config.session.pending_request_ttl).await?;
    Ok(())
}

/// The attempt `state_param` names, removed from the store: a second callback with the same
/// `state` finds nothing.
pub async fn take(state: &AppState, state_param: &str) -> Result<Option<Attempt>, AppError> {
    if state_param.is_empty() || state_param.len() > 128 {
        return Ok(None);
    }
    Ok(state.ephemeral.take(&key(state_param)).await?.and_then(|b| serde_json::from_slice(&b).ok()))
}
