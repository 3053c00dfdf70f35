//! Verification of JWTs this server signed (access tokens, ID tokens) against its own key set:
//! the signature with the algorithm of our key, the header rules, `typ`, `iss`, and the time
//! claims against sesame's clock.

use jsonwebtoken::{decode, decode_header, Header, Validation};
use serde::de::DeserializeOwned;

use super::jwt_rules::{check_header, check_times, RuleError, TimeRules};
use super::keyring::KeyRing;
use crate::clock::UnixTime;

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

/// Clock skew forgiven between the nodes of a cluster on `nbf` and `iat`; never on `exp`.
const NODE_SKEW: i64 = 30;

/// What kind of our tokens is expected, and whether an expired one will do.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub typ: &'static str,
    pub allow_expired: bool,
}

impl Expect {
    pub const ACCESS_TOKEN: Self = Self { typ: "at+jwt", allow_expired: false };
    /// An `id_token_hint`: an ID token, possibly expired (OIDC RP-Initiated Logout §2).
    pub const ID_TOKEN_HINT: Self = Self { typ: "JWT", allow_expired: true };
}

/// Verifies signature, header, `typ`, `iss`, `sub` and the times at `now`. `aud` is the caller's to check.
pub fn verify_own_jwt<T: DeserializeOwned>(keys: &KeyRing, token: &str, issuer: &str, expect: Expect, now: UnixTime) -> Result<Verified<T>, VerifyError> {
    let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
    check_header(&header).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(expect.typ)) {
        return Err(VerifyError::WrongType(expect.typ));
    }
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let verifier = keys.current().verifier(kid).ok_or(VerifyError::UnknownKey)?;
    // The algorithm comes from our key, never from the token's header.
    let (key, alg) = (&verifier.0, verifier.1);
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    // Times are judged below, against sesame's clock.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub"]);
    let data = decode::<serde_json::Value>(token, key, &validation).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let rules = TimeRules { skew: NODE_SKEW, exp_leeway: 0, require_iat: true, allow_expired: expect.allow_expired, max_lifetime: None };
    check_times(&data.claims, now, rules).map_err(|e| match e {
        RuleError::Expired => VerifyError::Expired,
        other => VerifyError::Invalid(other.to_string()),
    })?;
    let claims = serde_json::from_value(data.claims).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    Ok(Verified { header: data.header, claims })
}
