//! Secrets sesame generates (client secrets, refresh tokens, API keys): 256 random bits,
//! stored as SHA-256 hashes, compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 bits from the OS generator, base64url without padding (43 characters).
pub fn generate_secret() -> String {
    random_token(32)
}

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The SHA-256 of a secret in hex: a store key that does not reveal the secret.
pub fn hash_hex(secret: &str) -> String {
    hash_secret(secret).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares the hash of `presented` with `stored_hash` in constant time.
pub fn secret_matches(presented: &str, stored_hash: &[u8]) -> bool {
    hash_secret(presented).ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_unique_and_verifiable() {
        let a = generate_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, generate_secret());
        let h = hash_secret(&a);
        assert!(secret_matches(&a, &h));
        assert!(!secret_matches("nope", &h));
        assert!(!secret_matches(&a, &h[..31]));
    }
}
