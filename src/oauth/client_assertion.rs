//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9): a short-lived JWT
//! signed with the client's key, each one accepted once.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::crypto::alg::CLIENT_ASSERTION_ALGS;
use crate::error::{EndpointError, OAuthError, CLIENT_AUTH_FAILED as GENERIC};
use crate::oauth::form::OAuthForm;
use crate::paths;
use crate::state::AppState;
use crate::store::{AuthMethod, Client};

/// Signing algorithms accepted for client assertions; never `none` or a shared-secret MAC.
/// An assertion may not claim to live longer than this.
const MAX_LIFETIME: i64 = 300;
const LEEWAY: u64 = 30;

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
    let alg = match header.alg {
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => return Err(fail("client assertion algorithm not accepted")),
    };
    debug_assert!(CLIENT_ASSERTION_ALGS.contains(&alg));
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
    let key = DecodingKey::from_jwk(jwk).map_err(|_| fail(GENERIC))?;

    let config = &state.config;
    let audiences = [config.issuer().to_string(), config.endpoint(paths::TOKEN), config.endpoint(paths::INTROSPECT), config.endpoint(paths::REVOKE)];
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&audiences);
    validation.set_issuer(&[&client.id]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    let claims = decode::<Claims>(assertion, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => fail("client assertion expired"),
            jsonwebtoken::errors::ErrorKind::InvalidAudience => fail("client assertion audience is not this server"),
            _ => fail("client assertion is invalid"),
        })?
        .claims;
    let now = state.now();
    if claims.sub != client.id {
        return Err(fail("client assertion sub must be the client_id"));
    }
    if claims.exp - now > MAX_LIFETIME {
        return Err(fail("client assertion lives too long (at most 5 minutes)"));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(fail("client assertion needs a jti"));
    }
    let remember = Duration::from_secs((claims.exp - now).max(0) as u64 + LEEWAY);
    let first_use = state.ephemeral.put_if_absent(&format!("assertion:{}:{}", client.id, claims.jti), b"1", remember).await?;
    if !first_use {
        state.metrics.security_event("client_assertion_replay");
        return Err(fail("client assertion already used"));
    }
    Ok(client)
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
