//! Authorization codes: random, single-use (one atomic take), short-lived, bound to everything
//! the token request must match. A redeemed code leaves a marker so that a second redemption
//! can revoke what the first one obtained (RFC 6749 §4.1.2).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_hex};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub sub: String,
    pub auth_time: UnixTime,
    pub sid: String,
    pub amr: Vec<String>,
}

/// What a redeemed code produced, for revocation on replay.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Redemption {
    pub refresh_family: Option<String>,
    pub access_jti: Option<String>,
    pub access_exp: Option<UnixTime>,
}

pub async fn issue(state: &AppState, code: &AuthorizationCode) -> Result<String, AppError> {
    let value = generate_secret();
    let bytes = serde_json::to_vec(code).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&format!("code:{}", hash_hex(&value)), &bytes, state.config.session.code_ttl).await?;
    Ok(value)
}

/// How long a redemption marker outlives the code: as long as the tokens it yielded can matter.
fn marker_ttl(state: &AppState) -> Duration {
    state.config.longest_signed_token().max(Duration::from_secs(3600))
}

pub enum Taken {
    Fresh(AuthorizationCode),
    /// Already redeemed: here is what the first redemption obtained.
    Replayed(Redemption),
    Unknown,
}

/// Takes the code (at most one caller ever gets it) and leaves the redemption marker.
pub async fn take(state: &AppState, value: &str) -> Result<Taken, AppError> {
    let hash = hash_hex(value);
    match state.ephemeral.take(&format!("code:{hash}")).await? {
        Some(bytes) => {
            state.ephemeral.put(&format!("coderedeemed:{hash}"), b"{}", marker_ttl(state)).await?;
            Ok(serde_json::from_slice(&bytes).map(Taken::Fresh).unwrap_or(Taken::Unknown))
        }
        None => match state.ephemeral.get(&format!("coderedeemed:{hash}")).await? {
            Some(bytes) => Ok(Taken::Replayed(serde_json::from_slice(&bytes).unwrap_or_default())),
            None => Ok(Taken::Unknown),
        },
    }
}

pub async fn record_redemption(state: &AppState, value: &str, redemption: &Redemption) -> Result<(), AppError> {
    let bytes = serde_json::to_vec(redemption).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&format!("coderedeemed:{}", hash_hex(value)), &bytes, marker_ttl(state)).await?;
    Ok(())
}
