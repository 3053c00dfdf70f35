//! A DPoP client key and its proofs (RFC 9449 §4.2), signed here with sesame's own key types so
//! each test can bend one claim at a time. The outside clients' proofs are in `tests/node`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sesame::crypto::alg::SigningAlg;
use sesame::crypto::keys::{generate, SigningKeyPair};
use sesame::crypto::secrets::random_token;
use sha2::{Digest, Sha256};

pub struct DpopKey {
    pair: SigningKeyPair,
    pub jwk: Value,
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

impl DpopKey {
    pub fn new(alg: SigningAlg) -> Self {
        let generated = generate(alg).unwrap();
        let pair = SigningKeyPair::from_pkcs8(&generated.kid, alg, &generated.pkcs8_der).unwrap();
        let mut jwk = generated.public_jwk.clone();
        for member in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        Self { pair, jwk }
    }

    /// The RFC 7638 thumbprint, computed here independently of sesame's.
    pub fn jkt(&self) -> String {
        let members: &[&str] = match self.jwk["kty"].as_str().unwrap() {
            "EC" => &["crv", "kty", "x", "y"],
            "RSA" => &["e", "kty", "n"],
            _ => &["crv", "kty", "x"],
        };
        let canonical: Vec<String> = members.iter().map(|m| format!("\"{m}\":{}", self.jwk[*m])).collect();
        URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{{{}}}", canonical.join(",")).as_bytes()))
    }

    /// A fresh proof for `htm` `htu`, with `ath` for `token` when given.
    pub fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        let mut claims = json!({"jti": random_token(12), "htm": htm, "htu": htu, "iat": now()});
        if let Some(t) = token {
            claims["ath"] = json!(ath(t));
        }
        self.sign(json!({}), claims)
    }

    /// A proof with these claims and these header members on top of the usual ones.
    pub fn sign(&self, header_extra: Value, claims: Value) -> String {
        let mut header = json!({"typ": "dpop+jwt", "alg": self.pair.alg.as_str(), "jwk": self.jwk});
        for (k, v) in header_extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", encode(&header), encode(&claims));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(self.pair.sign(input.as_bytes()).unwrap()))
    }
}
