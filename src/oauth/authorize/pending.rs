//! A validated authorization request waiting for the user (login, consent), kept in the
//! ephemeral store under a random id that travels through the pages. Only the id travels:
//! what the client asked is read back from the store, never from the browser again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::checks::{Prompt, ResponseMode};
use crate::clock::UnixTime;
use crate::crypto::secrets::{hash_hex, random_token};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it).
    pub redirect_uri_given: bool,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub response_mode: ResponseMode,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub created_at: UnixTime,
    /// Guards the login and consent forms of this request.
    pub csrf: String,
    /// Set when the user signed in during this request (so `prompt=login` does not loop).
    pub logged_in_at: Option<UnixTime>,
    /// Set when the user allowed this request on the consent page.
    pub consented: bool,
}

fn key(id: &str) -> String {
    format!("authz:{}", hash_hex(id))
}

pub fn new_id() -> String {
    random_token(24)
}

fn ttl(state: &AppState) -> Duration {
    state.config.session.pending_request_ttl
}

pub async fn save(state: &AppState, id: &str, pending: &PendingAuthorization) -> Result<(), AppError> {
    let bytes = serde_json::to_vec(pending).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&key(id), &bytes, ttl(state)).await?;
    Ok(())
}

pub async fn load(state: &AppState, id: &str) -> Result<Option<PendingAuthorization>, AppError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    Ok(state.ephemeral.get(&key(id)).await?.and_then(|b| serde_json::from_slice(&b).ok()))
}

pub async fn remove(state: &AppState, id: &str) -> Result<(), AppError> {
    state.ephemeral.delete(&key(id)).await?;
    Ok(())
}
