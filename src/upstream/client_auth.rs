//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9) toward a provider's token endpoint: a short
//! signed assertion instead of a shared secret.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::clock::UnixTime;
use crate::crypto::secrets::random_token;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Long enough for the request to arrive, short enough to be useless if it leaked.
const LIFETIME: i64 = 60;

pub struct AssertionKey {
    key: EncodingKey,
    alg: Algorithm,
}

impl AssertionKey {
    /// A PKCS#8 PEM: RSA (signs RS256) or P-256 (ES256).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&pem)
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Ok(Self { key, alg: Algorithm::RS256 });
        }
        EncodingKey::from_ec_pem(pem).map(|key| Self { key, alg: Algorithm::ES256 }).map_err(|_| "not an RSA or P-256 private key in PEM".to_string())
    }

    /// An assertion for one token request by `client_id` at `token_url`.
    pub fn assertion(&self, client_id: &str, token_url: &str, now: UnixTime) -> Result<String, String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            sub: &'a str,
            aud: &'a str,
            jti: String,
            iat: UnixTime,
            exp: UnixTime,
        }
        let claims = Claims { iss: client_id, sub: client_id, aud: token_url, jti: random_token(16), iat: now, exp: now + LIFETIME };
        jsonwebtoken::encode(&Header::new(self.alg), &claims, &self.key).map_err(|e| format!("signing the client assertion: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ec_key_signs_a_short_assertion_for_the_token_endpoint() {
        let generated = crate::crypto::keys::generate(crate::crypto::alg::SigningAlg::ES256).unwrap();
        use base64::Engine;
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", base64::engine::general_purpose::STANDARD.encode(&generated.pkcs8_der));
        let key = AssertionKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.alg, Algorithm::ES256);
        let jwt = key.assertion("sesame", "https://idp.example/token", 1_000).unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], "sesame");
        assert_eq!(claims["sub"], "sesame");
        assert_eq!(claims["aud"], "https://idp.example/token");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), LIFETIME);
        assert!(AssertionKey::from_pem(b"not a key").is_err());
    }
}
