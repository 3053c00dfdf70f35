//! Authorization codes: random, single-use (one atomic take), short-lived, bound to everything
//! the token request must match. A redeemed code leaves a marker so that a second redemption
//! can revoke what the first one obtained (RFC 6749 §4.1.2).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_hex};
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::grant::Grant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// Flattened: the stored form is the same as before the grant had a type of its own.
    #[serde(flatten)]
    pub grant: Grant,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// RFC 9449 §10: the DPoP key (thumbprint) the authorization request named; the code is
    /// redeemed only with a proof of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
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
        None => {
            // Flag the replay before reading what the first redemption recorded: if that one is
            // still issuing, it sees the flag after recording (`replayed`) and revokes itself.
            state.ephemeral.put(&format!("codereplayed:{hash}"), b"1", marker_ttl(state)).await?;
            match state.ephemeral.get(&format!("coderedeemed:{hash}")).await? {
                Some(bytes) => Ok(Taken::Replayed(serde_json::from_slice(&bytes).unwrap_or_default())),
                None => Ok(Taken::Unknown),
            }
        }
    }
}

/// Records what the redemption issued; true when a replay raced it meanwhile (whose revocation
/// may have found nothing recorded yet), so the caller revokes what it issued.
pub async fn record_redemption(state: &AppState, value: &str, redemption: &Redemption) -> Result<bool, AppError> {
    let hash = hash_hex(value);
    let bytes = serde_json::to_vec(redemption).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&format!("coderedeemed:{hash}"), &bytes, marker_ttl(state)).await?;
    Ok(state.ephemeral.get(&format!("codereplayed:{hash}")).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes live in the shared store for a minute: a node of the previous release must read
    /// what this one writes, and the other way round, during a rolling deploy.
    #[test]
    fn the_stored_form_is_flat_as_before() {
        let before = r#"{"client_id":"app","redirect_uri":"https://app/cb","redirect_uri_given":true,"code_challenge":null,"nonce":"n","scopes":["openid"],"sub":"u","auth_time":5,"sid":"s","amr":["pwd"]}"#;
        let code: AuthorizationCode = serde_json::from_str(before).unwrap();
        assert_eq!(code.grant, Grant { client_id: "app".into(), sub: "u".into(), scopes: vec!["openid".into()], auth_time: 5, sid: "s".into(), amr: vec!["pwd".into()] });
        let again: serde_json::Value = serde_json::to_value(&code).unwrap();
        assert_eq!(again, serde_json::from_str::<serde_json::Value>(before).unwrap());
    }
}
