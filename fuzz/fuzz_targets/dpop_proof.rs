//! A DPoP proof as a client sends it (RFC 9449 §4.3), checked in full: the header read by hand
//! (typ, alg, jwk, crit), the key's thumbprint, the signature, the claims. Nothing may panic, and
//! what passes must carry a jti and a thumbprint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame::dpop::proof::{check_proof, ProofExpectation};

fuzz_target!(|data: &[u8]| {
    let proof = String::from_utf8_lossy(data);
    let expect = ProofExpectation { htm: "POST", htu: "https://id.example.com/token", ath: Some("x"), max_age: 60, future_skew: 5 };
    if let Ok(verified) = check_proof(&proof, &expect, 1_000_000) {
        assert!(!verified.jti.is_empty() && !verified.jkt.is_empty());
    }
});
