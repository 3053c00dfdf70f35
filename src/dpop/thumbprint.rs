//! JWK thumbprints (RFC 7638): the SHA-256 of the key's required members, in lexicographic
//! order, serialized without whitespace. DPoP binds tokens to this value (`cnf.jkt`).
//!
//! Computed here from the JSON members rather than by jsonwebtoken's `Jwk::thumbprint`, which
//! panics on some key/curve combinations a caller can send.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The members that identify a public key of each type (RFC 7638 §3.2), already sorted.
fn required_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "RSA" => Some(&["e", "kty", "n"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        _ => None,
    }
}

/// The base64url SHA-256 thumbprint of a public JWK; `None` when a required member is missing
/// or not a string, or the key type is not one DPoP proofs may use.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let mut canonical = String::from("{");
    for (i, name) in required_members(kty)?.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json writes the JSON string form (quotes, escapes) RFC 7638 §3.3 asks for.
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// RFC 7638 §3.1: the worked example, with its optional members ignored.
    #[test]
    fn the_rfc_7638_example() {
        let jwk = object(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(jwk_thumbprint(&jwk).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn only_the_required_members_count() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let mut decorated = ec.clone();
        decorated["kid"] = json!("k1");
        decorated["use"] = json!("sig");
        assert_eq!(jwk_thumbprint(&object(ec.clone())), jwk_thumbprint(&object(decorated)));
        let mut moved = ec;
        moved["x"] = json!("AAAA");
        assert_ne!(jwk_thumbprint(&object(moved.clone())), None);
        moved.as_object_mut().unwrap().remove("y");
        assert_eq!(jwk_thumbprint(&object(moved)), None, "a missing member");
        assert_eq!(jwk_thumbprint(&object(json!({"kty": "oct", "k": "c2VjcmV0"}))), None, "symmetric keys are not for DPoP");
        assert_eq!(jwk_thumbprint(&object(json!({"kty": "OKP", "crv": "Ed25519", "x": 5}))), None, "non-string members");
    }
}
