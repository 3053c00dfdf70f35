//! Signing key pairs: generated, serialized as PKCS#8, parsed once into aws-lc key pairs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use super::alg::SigningAlg;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("key material is not a valid {alg} PKCS#8 key")]
    Parse { alg: SigningAlg },
    #[error("signing failed")]
    Sign,
}

/// A parsed private key, ready to sign without re-parsing.
pub enum KeyPairKind {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

pub struct SigningKeyPair {
    pub kid: String,
    pub alg: SigningAlg,
    pair: KeyPairKind,
    rng: SystemRandom,
}

/// A freshly generated key: its PKCS#8 DER (to be sealed) and its public JWK.
pub struct GeneratedKey {
    pub kid: String,
    pub pkcs8_der: Vec<u8>,
    pub public_jwk: Value,
}

pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, KeyError> {
    let rng = SystemRandom::new();
    let gen_err = |e: &dyn std::fmt::Display| KeyError::Generate(e.to_string());
    let (der, members) = match alg {
        SigningAlg::RS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| gen_err(&e))?;
            let der = key.to_pkcs8_der().map_err(|e| gen_err(&e))?.as_bytes().to_vec();
            let members = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            });
            (der, members)
        }
        SigningAlg::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|e| gen_err(&e))?;
            let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).map_err(|e| gen_err(&e))?;
            // Uncompressed point: 0x04 || X || Y.
            let point = pair.public_key().as_ref();
            let members = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (doc.as_ref().to_vec(), members)
        }
        SigningAlg::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| gen_err(&e))?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|e| gen_err(&e))?;
            let members = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (doc.as_ref().to_vec(), members)
        }
    };
    let kid = thumbprint(&members);
    let mut jwk = members;
    jwk["kid"] = Value::String(kid.clone());
    jwk["use"] = Value::String("sig".into());
    jwk["alg"] = Value::String(alg.as_str().into());
    Ok(GeneratedKey { kid, pkcs8_der: der, public_jwk: jwk })
}

/// RFC 7638 thumbprint over the required members. serde_json's map is ordered by key,
/// which is the lexicographic order the RFC asks for.
fn thumbprint(required_members: &Value) -> String {
    let canonical = serde_json::to_string(required_members).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl SigningKeyPair {
    pub fn from_pkcs8(kid: &str, alg: SigningAlg, der: &[u8]) -> Result<Self, KeyError> {
        let parse_err = || KeyError::Parse { alg };
        let pair = match alg {
            SigningAlg::RS256 => KeyPairKind::Rs256(RsaKeyPair::from_pkcs8(der).map_err(|_| parse_err())?),
            SigningAlg::ES256 => KeyPairKind::Es256(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|_| parse_err())?,
            ),
            SigningAlg::EdDSA => KeyPairKind::EdDsa(Ed25519KeyPair::from_pkcs8(der).map_err(|_| parse_err())?),
        };
        Ok(Self { kid: kid.to_string(), alg, pair, rng: SystemRandom::new() })
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            KeyPairKind::Rs256(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig).map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            KeyPairKind::Es256(pair) => Ok(pair.sign(&self.rng, message).map_err(|_| KeyError::Sign)?.as_ref().to_vec()),
            KeyPairKind::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_generates_parses_and_signs() {
        for alg in SigningAlg::ALL {
            let key = generate(alg).unwrap();
            assert_eq!(key.public_jwk["alg"], alg.as_str());
            assert_eq!(key.public_jwk["kid"], key.kid.as_str());
            assert_eq!(key.public_jwk["use"], "sig");
            let pair = SigningKeyPair::from_pkcs8(&key.kid, alg, &key.pkcs8_der).unwrap();
            assert!(!pair.sign(b"hello").unwrap().is_empty());
        }
    }
}
