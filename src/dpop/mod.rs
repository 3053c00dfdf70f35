//! DPoP (RFC 9449): proof-of-possession of a client's key for access and refresh tokens.
//! `proof.rs` verifies a proof (pure, with `now`); here are the checks that need the store
//! (a `jti` is accepted once across every node; server nonces) and the `DPoP` request header.

pub mod nonce;
pub mod proof;
pub mod thumbprint;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub use self::proof::{access_token_hash, ProofError, VerifiedProof, DPOP_ALGS};
use self::proof::{check_proof, ProofExpectation};
use crate::config::Config;
use crate::crypto::secrets::hash_hex;
use crate::error::AppError;
use crate::store::Ephemeral;

/// How far ahead of ours a client's clock may be on a proof's `iat`.
const FUTURE_SKEW: i64 = 5;

/// The `DPoP` header of a request: none, exactly one, or something unusable (several, not text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DpopHeader {
    #[default]
    Absent,
    One(String),
    Unusable,
}

impl<S: Send + Sync> FromRequestParts<S> for DpopHeader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

impl DpopHeader {
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        let mut values = headers.get_all("dpop").iter();
        match (values.next(), values.next()) {
            (None, _) => Self::Absent,
            (Some(v), None) => v.to_str().ok().map(|s| s.trim()).filter(|s| !s.is_empty()).map_or(Self::Unusable, |s| Self::One(s.to_string())),
            // §4.3 item 1: not more than one DPoP header.
            (Some(_), Some(_)) => Self::Unusable,
        }
    }

    pub fn is_present(&self) -> bool {
        *self != Self::Absent
    }
}

/// Why a proof was refused.
#[derive(Debug)]
pub enum DpopError {
    /// `invalid_dpop_proof`, with our own description.
    Invalid(String),
    /// `use_dpop_nonce`: retry with this nonce (RFC 9449 §8).
    UseNonce(String),
    App(AppError),
}

impl From<crate::store::StoreError> for DpopError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::App(AppError::Store(e))
    }
}

/// The request a proof must match.
pub struct ProofRequest<'a> {
    pub method: &'a str,
    /// The endpoint's URL as clients reach it (issuer + path).
    pub url: &'a str,
    /// At resources: the access token presented with the proof.
    pub access_token: Option<&'a str>,
    /// Whether the proof must carry one of our nonces (`dpop.nonce`, at the token and PAR endpoints).
    pub nonce_required: bool,
}

/// Verifies `header`'s proof for `request` at `now`: every rule of §4.3, the nonce when
/// required, and the `jti` unseen by any node within the proof's window.
pub async fn verify(config: &Config, ephemeral: &dyn Ephemeral, header: &DpopHeader, request: &ProofRequest<'_>, now: i64) -> Result<VerifiedProof, DpopError> {
    let proof = match header {
        DpopHeader::One(p) => p,
        DpopHeader::Absent => return Err(DpopError::Invalid("a DPoP proof is required".into())),
        DpopHeader::Unusable => return Err(DpopError::Invalid("send exactly one DPoP header".into())),
    };
    let ath = request.access_token.map(access_token_hash);
    let max_age = config.dpop.proof_max_age.as_secs() as i64;
    let expect = ProofExpectation { htm: request.method, htu: request.url, ath: ath.as_deref(), max_age, future_skew: FUTURE_SKEW };
    let verified = check_proof(proof, &expect, now).map_err(|e| DpopError::Invalid(e.to_string()))?;
    if request.nonce_required {
        let lifetime = config.dpop.nonce_lifetime;
        let valid = match &verified.nonce {
            Some(n) => nonce::is_valid(ephemeral, lifetime, now, n).await?,
            None => false,
        };
        if !valid {
            return Err(DpopError::UseNonce(nonce::current(ephemeral, lifetime, now).await?));
        }
    }
    // Seen once per key within the window in which `iat` lets the proof pass, on any node.
    let ttl = Duration::from_secs((max_age + FUTURE_SKEW + 1).max(1) as u64);
    let key = format!("dpop:jti:{}", hash_hex(&format!("{}:{}", verified.jkt, verified.jti)));
    if !ephemeral.put_if_absent(&key, b"1", ttl).await? {
        return Err(DpopError::Invalid("the DPoP proof was already used (jti)".into()));
    }
    Ok(verified)
}

/// The nonce to hand out with answers of the token and PAR endpoints, when nonces are on.
pub async fn nonce_to_send(config: &Config, ephemeral: &dyn Ephemeral, now: i64) -> Result<Option<String>, AppError> {
    if !config.dpop.nonce {
        return Ok(None);
    }
    Ok(Some(nonce::current(ephemeral, config.dpop.nonce_lifetime, now).await?))
}
