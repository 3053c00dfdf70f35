//! ID tokens (OIDC Core §2, §3.1.3.6).

use crate::tokens::access::Issuer;
use crate::tokens::grant::Grant;
use crate::crypto::alg::SigningAlg;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::clock::UnixTime;
use crate::crypto::jwt;
use crate::error::AppError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub auth_time: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// What the sign-in proved (`oauth::acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// With the `groups` scope: the groups of the user's last upstream sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// The left half of the access token's hash, with the hash of the signing algorithm
/// (SHA-512 for Ed25519, as OpenID's EdDSA guidance and common RP libraries do).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::RS256 | SigningAlg::ES256 => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

pub struct IdTokenFacts<'a> {
    pub grant: &'a Grant,
    pub nonce: Option<&'a str>,
    /// For `at_hash`.
    pub access_token: Option<&'a str>,
    /// `groups`, when the grant holds the `groups` scope.
    pub groups: Option<&'a [String]>,
}

pub fn issue(issuer: Issuer<'_>, facts: IdTokenFacts<'_>, now: UnixTime) -> Result<String, AppError> {
    let config = issuer.config;
    let key = issuer.keys.signer(config.tokens.id_token_alg).map_err(|e| AppError::Internal(e.to_string()))?;
    let claims = IdTokenClaims {
        iss: config.issuer().to_string(),
        sub: facts.grant.sub.clone(),
        aud: facts.grant.client_id.clone(),
        exp: now + config.tokens.id_token_ttl.as_secs() as i64,
        iat: now,
        auth_time: facts.grant.auth_time,
        nonce: facts.nonce.map(str::to_string),
        at_hash: facts.access_token.map(|t| at_hash(key.alg, t)),
        sid: Some(facts.grant.sid.clone()),
        amr: facts.grant.amr.clone(),
        acr: Some(crate::oauth::acr::acr_of(&facts.grant.amr).to_string()),
        groups: facts.groups.map(<[String]>::to_vec),
    };
    jwt::sign(&key, "JWT", &claims).map_err(|e| AppError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_hash_is_the_left_half_of_the_hash() {
        // Cross-checked with Python: urlsafe_b64encode(sha256(token).digest()[:16]).
        assert_eq!(super::at_hash(super::SigningAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNzaWY1Wy"), "Orc06UhYGLABnjkpcKErrQ");
        assert_eq!(super::at_hash(super::SigningAlg::ES256, "jHkWEdUXMU1BwAsC4vtUsZwnNzaWY1Wy"), "Orc06UhYGLABnjkpcKErrQ");
        assert_eq!(super::at_hash(super::SigningAlg::EdDSA, "x").len(), 43, "half of SHA-512");
    }
}
