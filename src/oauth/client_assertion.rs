//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): a short-lived JWT
//! signed with the client's key, each one accepted once.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::crypto::jwt_rules::{check_header, check_times, RuleError, TimeRules};
use crate::error::{EndpointError, OAuthError, CLIENT_AUTH_FAILED as GENERIC};
use crate::oauth::form::OAuthForm;
use crate::paths;
use crate::state::AppState;
use crate::store::{AuthMethod, Client};

/// An assertion may not claim to live longer than this (seconds).
const MAX_LIFETIME: i64 = 300;
/// Clock skew forgiven between the client and sesame.
const SKEW: i64 = 30;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    jti: String,
}

#[derive(Deserialize)]
struct Unverified {
    sub: Option<String>,
}

fn fail(why: &str) -> EndpointError {
    OAuthError::invalid_client(why.to_string()).into()
}

pub async fn authenticate(state: &AppState, form: &OAuthForm, assertion: &str) -> Result<Client, EndpointError> {
    let header = decode_header(assertion).map_err(|_| fail("malformed client assertion"))?;
    check_header(&header).map_err(|e| fail(&format!("client assertion refused: {e}")))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 | Algorithm::EdDSA) {
        return Err(fail("client assertion algorithm not accepted"));
    }
    // Which client's keys to check against: read `sub` before verification, then verify it.
    let client_id = unverified_sub(assertion).ok_or_else(|| fail("client assertion has no sub"))?;
    if form.get("client_id").is_some_and(|id| id != client_id) {
        return Err(fail("client_id differs from the assertion's subject"));
    }
    let Some(client) = state.client(&client_id).await? else { return Err(fail(GENERIC)) };
    if client.auth_method != AuthMethod::PrivateKeyJwt {
        tracing::info!(client_id = %client.id, expected = client.auth_method.as_str(), "client used the wrong authentication method");
        return Err(fail(GENERIC));
    }
    let keys = state.client_jwks.keys(&client, header.kid.as_deref()).await.map_err(|e| {
        tracing::warn!(client_id = %client.id, error = %e, "client keys unavailable");
        fail(GENERIC)
    })?;
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| fail(GENERIC))?;
    // One algorithm per key, from the key: a token cannot choose how its key is used.
    if key_algorithm(jwk) != Some(header.alg) {
        return Err(fail("client assertion algorithm is not the one of its key"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| fail(GENERIC))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&client.id]);
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    // Audience and times are checked below, by sesame's rules and clock.
    validation.validate_aud = false;
    validation.validate_exp = false;
    let claims = decode::<Value>(assertion, &key, &validation).map_err(|_| fail("client assertion is invalid"))?.claims;
    if !audience_is_this_server(state, &claims) {
        return Err(fail("client assertion audience must be this server's token endpoint or issuer, and nothing else"));
    }
    let now = state.now();
    let rules = TimeRules { skew: SKEW, exp_leeway: SKEW, require_iat: false, allow_expired: false, max_lifetime: Some(MAX_LIFETIME) };
    check_times(&claims, now, rules).map_err(|e| match e {
        RuleError::Expired => fail("client assertion expired"),
        RuleError::TooLong => fail("client assertion lives too long (at most 5 minutes)"),
        other => fail(&format!("client assertion is invalid: {other}")),
    })?;
    let claims: Claims = serde_json::from_value(claims).map_err(|_| fail("client assertion needs sub, exp and jti"))?;
    if claims.sub != client.id {
        return Err(fail("client assertion sub must be the client_id"));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(fail("client assertion needs a jti"));
    }
    let remember = Duration::from_secs((claims.exp - now).max(0) as u64 + SKEW as u64);
    let first_use = state.ephemeral.put_if_absent(&format!("assertion:{}:{}", client.id, claims.jti), b"1", remember).await?;
    if !first_use {
        state.metrics.security_event("client_assertion_replay");
        return Err(fail("client assertion already used"));
    }
    Ok(client)
}

/// The token endpoint or the issuer, alone (RFC 7523 §3, OIDC Core §9): an assertion that also
/// names another audience may have been made for another server, which could replay it here.
fn audience_is_this_server(state: &AppState, claims: &Value) -> bool {
    let config = &state.config;
    let token_endpoint = config.endpoint(paths::TOKEN);
    let ours = |v: &Value| v.as_str().is_some_and(|a| a == config.issuer() || a == token_endpoint);
    match claims.get("aud") {
        Some(Value::Array(list)) => !list.is_empty() && list.iter().all(ours),
        Some(one) => ours(one),
        None => false,
    }
}

/// The one algorithm a registered key signs with: its `alg`, or else the one its type implies
/// (RSA keys without `alg` mean RS256). Keys for encryption or HMAC have none.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Some(Algorithm::RS256),
        Some(KeyAlgorithm::PS256) if implied == Algorithm::RS256 => Some(Algorithm::PS256),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Some(Algorithm::EdDSA),
        Some(_) => None,
    }
}

/// The `sub` of an assertion before its signature is checked: only to find whose keys to try.
pub fn unverified_sub(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Unverified>(&bytes).ok()?.sub
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn the_unverified_sub_is_read_from_any_well_formed_payload(sub in ".{0,40}", header in "[A-Za-z0-9_-]{0,20}", sig in "[A-Za-z0-9_-]{0,20}") {
            let payload = URL_SAFE_NO_PAD.encode(serde_json::json!({"sub": sub, "iss": "x"}).to_string());
            prop_assert_eq!(unverified_sub(&format!("{header}.{payload}.{sig}")), Some(sub));
        }

        #[test]
        fn anything_else_is_none_without_panic(token in "[ -~]{0,120}") {
            let _ = unverified_sub(&token);
        }
    }
}
