//! DPoP proof verification (RFC 9449 §4.3), as a pure function of the proof, what the request
//! was, and `now`. Replay (the `jti` seen before) and server nonces need the ephemeral store
//! and are checked by the caller (`mod.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::thumbprint::jwk_thumbprint;
use crate::clock::UnixTime;

/// The algorithms proofs may be signed with: what `dpop_signing_alg_values_supported` says.
/// `Ed25519` is RFC 9864's fully-specified name for EdDSA over Ed25519 (what oauth4webapi and
/// openid-client put in proofs signed with Ed25519 keys).
pub const DPOP_ALGS: [&str; 5] = ["ES256", "RS256", "PS256", "EdDSA", "Ed25519"];

/// The JOSE algorithm a proof's `alg` names, among those we accept.
fn algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        "PS256" => Some(Algorithm::PS256),
        "EdDSA" | "Ed25519" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Header members that change how a JWS is processed: sesame understands none of them
/// (RFC 7515 §4.1.11 `crit`, RFC 7797 `b64`), and JWE or compressed tokens are not proofs.
const UNDERSTOOD_NOT: [&str; 4] = ["crit", "b64", "enc", "zip"];

/// The longest proof read at all (an RSA-4096 key in the header fits easily).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
const MAX_JTI_BYTES: usize = 256;
/// RSA keys shorter than 2048 bits are refused (RFC 8017 / NIST SP 800-131A).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// JWK members that only a private key has: a proof carrying one is refused (§4.3 item 7).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What the proof must match: the request it came with.
#[derive(Debug, Clone)]
pub struct ProofExpectation<'a> {
    /// The request's method, upper case.
    pub htm: &'a str,
    /// The endpoint's URL as this server is reached (issuer + path), no query or fragment.
    pub htu: &'a str,
    /// At resources: the base64url SHA-256 of the access token the proof goes with.
    pub ath: Option<&'a str>,
    /// How old (by `iat`) a proof may be, in seconds.
    pub max_age: i64,
    /// How far in the future `iat` may be (the client's clock ahead of ours), in seconds.
    pub future_skew: i64,
}

/// A proof that passed every check that needs no store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The key's RFC 7638 thumbprint: what tokens are bound to.
    pub jkt: String,
    pub jti: String,
    pub iat: UnixTime,
    /// The `nonce` claim, for the caller to check when nonces are on.
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    #[error("the DPoP proof's typ must be dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's algorithm is not supported")]
    UnsupportedAlg,
    #[error("the DPoP proof's jwk is missing, private, or not a key for its algorithm")]
    BadKey,
    #[error("the DPoP proof's signature does not verify")]
    BadSignature,
    #[error("the DPoP proof lacks `{0}`")]
    Missing(&'static str),
    #[error("the DPoP proof is for another method (htm)")]
    WrongMethod,
    #[error("the DPoP proof is for another URL (htu)")]
    WrongUrl,
    #[error("the DPoP proof is too old or issued in the future (iat)")]
    OutOfWindow,
    #[error("the DPoP proof is for another access token (ath)")]
    WrongAccessToken,
}

/// The base64url SHA-256 of an access token: `ath` (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

pub fn check_proof(proof: &str, expect: &ProofExpectation<'_>, now: UnixTime) -> Result<VerifiedProof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(ProofError::Malformed);
    };
    let header = json_object(header_b64).ok_or(ProofError::Malformed)?;
    if header.get("typ").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() != Some("dpop+jwt") {
        return Err(ProofError::WrongType);
    }
    if UNDERSTOOD_NOT.iter().any(|m| header.contains_key(*m)) {
        return Err(ProofError::Malformed);
    }
    let alg = header.get("alg").and_then(Value::as_str).and_then(algorithm).ok_or(ProofError::UnsupportedAlg)?;
    let jwk_members = header.get("jwk").and_then(Value::as_object).ok_or(ProofError::BadKey)?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_members.contains_key(*m)) || !key_fits(alg, jwk_members) {
        return Err(ProofError::BadKey);
    }
    let jkt = jwk_thumbprint(jwk_members).ok_or(ProofError::BadKey)?;
    let jwk: Jwk = serde_json::from_value(Value::Object(jwk_members.clone())).map_err(|_| ProofError::BadKey)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::BadKey)?;
    let signed = &proof[..header_b64.len() + 1 + payload_b64.len()];
    // The algorithm is the one checked against the key above, never chosen by the library.
    if !jsonwebtoken::crypto::verify(signature_b64, signed.as_bytes(), &key, alg).unwrap_or(false) {
        return Err(ProofError::BadSignature);
    }
    let claims = json_object(payload_b64).ok_or(ProofError::Malformed)?;

    let string = |name: &'static str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(ProofError::Missing(name));
    let jti = string("jti")?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(ProofError::Malformed);
    }
    if string("htm")? != expect.htm {
        return Err(ProofError::WrongMethod);
    }
    if !same_url(string("htu")?, expect.htu) {
        return Err(ProofError::WrongUrl);
    }
    let iat = claims.get("iat").and_then(Value::as_f64).filter(|f| f.is_finite()).ok_or(ProofError::Missing("iat"))? as i64;
    if iat < now - expect.max_age || iat > now + expect.future_skew {
        return Err(ProofError::OutOfWindow);
    }
    if let Some(expected_ath) = expect.ath {
        let ath = string("ath")?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(ath.as_bytes(), expected_ath.as_bytes())) {
            return Err(ProofError::WrongAccessToken);
        }
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).map(str::to_string);
    Ok(VerifiedProof { jkt, jti: jti.to_string(), iat, nonce })
}

/// A base64url segment holding a JSON object.
fn json_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// One key, one algorithm: the header's `alg` must be one the key's type and curve can sign.
fn key_fits(alg: Algorithm, jwk: &Map<String, Value>) -> bool {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    match (alg, member("kty"), member("crv")) {
        (Algorithm::ES256, Some("EC"), Some("P-256")) => true,
        (Algorithm::EdDSA, Some("OKP"), Some("Ed25519")) => true,
        (Algorithm::RS256 | Algorithm::PS256, Some("RSA"), _) => {
            member("n").and_then(|n| URL_SAFE_NO_PAD.decode(n).ok()).is_some_and(|n| n.len() >= MIN_RSA_MODULUS_BYTES)
        }
        _ => false,
    }
}

/// `htu` against the endpoint's URL: scheme, host, port and path after RFC 3986 normalization
/// (what the `url` crate does: case of scheme and host, default ports, dot segments); a query or
/// fragment in `htu` is ignored, as §4.3 says.
fn same_url(htu: &str, expected: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(expected)) else { return false };
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default() && a.path() == b.path()
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::crypto::alg::SigningAlg;
    use crate::crypto::keys::{generate, SigningKeyPair};

    pub struct ProofKey {
        pub pair: SigningKeyPair,
        pub jwk: Value,
    }

    pub fn proof_key(alg: SigningAlg) -> ProofKey {
        let generated = generate(alg).unwrap();
        let pair = SigningKeyPair::from_pkcs8(&generated.kid, alg, &generated.pkcs8_der).unwrap();
        let mut jwk = serde_json::to_value(&generated.public_jwk).unwrap();
        for m in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(m);
        }
        ProofKey { pair, jwk }
    }

    pub fn sign(key: &ProofKey, header_extra: Value, claims: Value) -> String {
        let mut header = json!({"typ": "dpop+jwt", "alg": key.pair.alg.as_str(), "jwk": key.jwk});
        for (k, v) in header_extra.as_object().unwrap() {
            if v.is_null() {
                header.as_object_mut().unwrap().remove(k);
            } else {
                header[k] = v.clone();
            }
        }
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = key.pair.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    const NOW: i64 = 1_000_000;
    const HTU: &str = "https://id.example.com/token";

    fn expect(ath: Option<&str>) -> ProofExpectation<'_> {
        ProofExpectation { htm: "POST", htu: HTU, ath, max_age: 60, future_skew: 5 }
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "POST", "htu": HTU, "iat": NOW})
    }

    #[test]
    fn a_good_proof_names_its_key() {
        for alg in SigningAlg::ALL {
            let key = proof_key(alg);
            let verified = check_proof(&sign(&key, json!({}), claims()), &expect(None), NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(Some(verified.jkt), jwk_thumbprint(key.jwk.as_object().unwrap()));
            assert_eq!((verified.jti.as_str(), verified.iat), ("j1", NOW));
        }
    }

    #[test]
    fn ed25519_is_eddsa_by_its_fully_specified_name() {
        let key = proof_key(SigningAlg::EdDSA);
        let proof = sign(&key, json!({"alg": "Ed25519"}), claims());
        assert!(check_proof(&proof, &expect(None), NOW).is_ok());
        let es = proof_key(SigningAlg::ES256);
        assert_eq!(check_proof(&sign(&es, json!({"alg": "Ed25519"}), claims()), &expect(None), NOW), Err(ProofError::BadKey));
    }

    #[test]
    fn every_rule_refuses_its_case() {
        let key = proof_key(SigningAlg::ES256);
        let with = |patch: Value| {
            let mut c = claims();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c
        };
        let check = |proof: String| check_proof(&proof, &expect(None), NOW);
        assert_eq!(check(sign(&key, json!({"typ": "JWT"}), claims())), Err(ProofError::WrongType));
        assert_eq!(check(sign(&key, json!({"jwk": null}), claims())), Err(ProofError::BadKey));
        let mut private = key.jwk.clone();
        private["d"] = json!("AAAA");
        assert_eq!(check(sign(&key, json!({"jwk": private}), claims())), Err(ProofError::BadKey));
        let other = proof_key(SigningAlg::ES256);
        assert_eq!(check(sign(&key, json!({"jwk": other.jwk}), claims())), Err(ProofError::BadSignature), "signed by another key");
        let rsa = proof_key(SigningAlg::RS256);
        assert_eq!(check(sign(&key, json!({"jwk": rsa.jwk}), claims())), Err(ProofError::BadKey), "ES256 with an RSA key");
        assert_eq!(check(sign(&key, json!({"crit": ["x"]}), claims())), Err(ProofError::Malformed));
        assert_eq!(check(sign(&key, json!({}), with(json!({"htm": "GET"})))), Err(ProofError::WrongMethod));
        assert_eq!(check(sign(&key, json!({}), with(json!({"htu": "https://id.example.com/other"})))), Err(ProofError::WrongUrl));
        assert_eq!(check(sign(&key, json!({}), with(json!({"htu": "https://evil.example.com/token"})))), Err(ProofError::WrongUrl));
        assert!(check(sign(&key, json!({}), with(json!({"htu": "HTTPS://ID.example.com:443/token?x=1"})))).is_ok(), "normalized, query ignored");
        assert_eq!(check(sign(&key, json!({}), with(json!({"iat": NOW - 61})))), Err(ProofError::OutOfWindow));
        assert_eq!(check(sign(&key, json!({}), with(json!({"iat": NOW + 6})))), Err(ProofError::OutOfWindow));
        assert_eq!(check(sign(&key, json!({}), with(json!({"jti": null})))), Err(ProofError::Missing("jti")));
        assert_eq!(check(sign(&key, json!({}), with(json!({"iat": "now"})))), Err(ProofError::Missing("iat")));
        assert_eq!(check("a.b".into()), Err(ProofError::Malformed));
        assert_eq!(check(format!("{}x", sign(&key, json!({}), claims()))), Err(ProofError::BadSignature));
    }

    #[test]
    fn at_resources_the_proof_names_the_token() {
        let key = proof_key(SigningAlg::EdDSA);
        let ath = access_token_hash("the-token");
        let mut c = claims();
        assert_eq!(check_proof(&sign(&key, json!({}), c.clone()), &expect(Some(&ath)), NOW), Err(ProofError::Missing("ath")));
        c["ath"] = json!(access_token_hash("another-token"));
        assert_eq!(check_proof(&sign(&key, json!({}), c.clone()), &expect(Some(&ath)), NOW), Err(ProofError::WrongAccessToken));
        c["ath"] = json!(ath);
        assert!(check_proof(&sign(&key, json!({}), c), &expect(Some(&ath)), NOW).is_ok());
    }

    #[test]
    fn none_and_symmetric_algorithms_are_refused() {
        let key = proof_key(SigningAlg::ES256);
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}).to_string()), URL_SAFE_NO_PAD.encode(claims().to_string()));
        assert!(check_proof(&none, &expect(None), NOW).is_err());
        let hs = format!("{}.{}.AAAA", URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}}).to_string()), URL_SAFE_NO_PAD.encode(claims().to_string()));
        assert_eq!(check_proof(&hs, &expect(None), NOW), Err(ProofError::UnsupportedAlg));
    }
}
