//! Verification of JWTs this server signed (access tokens, ID tokens) against its own key set.

use jsonwebtoken::{decode, decode_header, Header, Validation};
use serde::de::DeserializeOwned;

use super::keyring::KeyRing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("signed by a key this server does not publish")]
    UnknownKey,
    #[error("token type is not {0}")]
    WrongType(&'static str),
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

pub struct Verified<T> {
    pub header: Header,
    pub claims: T,
}

/// Verifies signature, `iss`, `typ` and (unless `allow_expired`) `exp`. `aud` is the caller's to check.
pub fn verify_own_jwt<T: DeserializeOwned>(
    keys: &KeyRing,
    token: &str,
    issuer: &str,
    typ: &'static str,
    allow_expired: bool,
) -> Result<Verified<T>, VerifyError> {
    let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
        return Err(VerifyError::WrongType(typ));
    }
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let verifier = keys.current().verifier(kid).ok_or(VerifyError::UnknownKey)?;
    // The algorithm comes from our key, never from the token's header.
    let (key, alg) = (&verifier.0, verifier.1);
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.validate_exp = !allow_expired;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = decode::<T>(token, key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
        _ => VerifyError::Invalid(e.to_string()),
    })?;
    Ok(Verified { header: data.header, claims: data.claims })
}
