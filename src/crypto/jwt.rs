//! JWT signing with pre-parsed keys (JWS compact serialization). Verification of tokens
//! is jsonwebtoken's job; signing is here because jsonwebtoken re-parses the key per call.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use super::keys::{KeyError, SigningKeyPair};

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `claims` with `key`; `typ` is `JWT` for ID tokens and `at+jwt` for access tokens (RFC 9068).
pub fn sign<C: Serialize>(key: &SigningKeyPair, typ: &str, claims: &C) -> Result<String, KeyError> {
    let header = serde_json::to_vec(&Header { alg: key.alg.as_str(), typ, kid: &key.kid }).map_err(|_| KeyError::Sign)?;
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{generate, SigningAlg};
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};

    #[test]
    fn tokens_verify_with_jsonwebtoken() {
        for (alg, jalg) in [(SigningAlg::RS256, Algorithm::RS256), (SigningAlg::ES256, Algorithm::ES256), (SigningAlg::EdDSA, Algorithm::EdDSA)] {
            let key = generate(alg).unwrap();
            let pair = SigningKeyPair::from_pkcs8(&key.kid, alg, &key.pkcs8_der).unwrap();
            let claims = serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64});
            let token = sign(&pair, "at+jwt", &claims).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk.clone()).unwrap();
            let decoding = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = Validation::new(jalg);
            validation.validate_aud = false;
            let data = decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "alice");
            assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
            assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
        }
    }
}
