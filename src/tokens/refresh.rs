//! Refresh tokens: opaque, 256-bit, stored hashed, grouped in families (one per grant).
//! Every use rotates; a rotated token used again revokes its family, unless it comes back
//! within the grace window (a client's retry of a refresh whose answer it lost).

use crate::tokens::grant::Grant;
use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_secret, random_token};
use crate::error::AppError;
use crate::tokens::access;
use crate::state::AppState;
use crate::store::{RefreshFamily, RefreshToken};

pub struct NewRefreshGrant {
    pub client_id: String,
    pub sub: String,
    pub scopes: Vec<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    /// A public client's DPoP key: every refresh must prove it (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
    /// A public client's certificate: every refresh must come with it (RFC 8705 §4).
    pub x5t_s256: Option<String>,
}

impl NewRefreshGrant {
    /// The first token of the family a code redemption starts.
    pub fn of(grant: &Grant) -> Self {
        Self { client_id: grant.client_id.clone(), sub: grant.sub.clone(), scopes: grant.scopes.clone(), auth_time: Some(grant.auth_time), sid: Some(grant.sid.clone()), dpop_jkt: None, x5t_s256: None }
    }

    /// A successor: the family keeps its original scopes, whatever one access token narrowed.
    pub fn continuing(token: &RefreshToken) -> Self {
        Self { client_id: token.client_id.clone(), sub: token.sub.clone(), scopes: token.scopes.clone(), auth_time: token.auth_time, sid: token.sid.clone(), dpop_jkt: token.dpop_jkt.clone(), x5t_s256: token.x5t_s256.clone() }
    }
}

pub struct IssuedRefresh {
    pub token: String,
    pub family_id: String,
}

/// Starts a family (a code redemption): the family, its first token and the jti of the access
/// token issued with it are written together.
pub async fn issue_new_family(state: &AppState, grant: NewRefreshGrant, access_jti: &str, access_exp: UnixTime, now: UnixTime) -> Result<IssuedRefresh, AppError> {
    let family = RefreshFamily {
        id: random_token(16),
        client_id: grant.client_id.clone(),
        sub: grant.sub.clone(),
        created_at: now,
        absolute_expires_at: now + state.config.tokens.refresh_absolute_ttl.as_secs() as i64,
        dpop_jkt: grant.dpop_jkt.clone(),
        x5t_s256: grant.x5t_s256.clone(),
    };
    let (token, first) = new_token(state, &family.id, &grant, now);
    state.durable.start_refresh_family(&family, &first, access_jti, access_exp).await?;
    Ok(IssuedRefresh { token, family_id: family.id })
}

/// A token of the family and its record, not yet stored.
fn new_token(state: &AppState, family_id: &str, grant: &NewRefreshGrant, now: UnixTime) -> (String, RefreshToken) {
    let token = generate_secret();
    let record = RefreshToken {
        token_hash: hash_secret(&token),
        family_id: family_id.to_string(),
        client_id: grant.client_id.clone(),
        sub: grant.sub.clone(),
        scopes: grant.scopes.clone(),
        auth_time: grant.auth_time,
        sid: grant.sid.clone(),
        created_at: now,
        idle_expires_at: now + state.config.tokens.refresh_idle_ttl.as_secs() as i64,
        absolute_expires_at: 0,
        used_at: None,
        revoked_at: None,
        dpop_jkt: grant.dpop_jkt.clone(),
        x5t_s256: grant.x5t_s256.clone(),
    };
    (token, record)
}

/// Revokes every refresh token of the family and denies its live access tokens.
pub async fn revoke_family(state: &AppState, family_id: &str) -> Result<(), AppError> {
    for (jti, exp) in state.durable.revoke_refresh_family(family_id, state.now()).await? {
        access::deny(state, &jti, exp).await?;
    }
    Ok(())
}

/// The stored token, if it is one of ours.
pub async fn find(state: &AppState, token: &str) -> Result<Option<RefreshToken>, AppError> {
    Ok(state.durable.refresh_token(&hash_secret(token)).await?)
}

pub fn is_live(token: &RefreshToken, now: UnixTime) -> bool {
    token.revoked_at.is_none() && token.used_at.is_none() && now < token.idle_expires_at && now < token.absolute_expires_at
}

/// Why a presented token gets nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A rotated token came back late: the family is revoked.
    Reused,
    /// Unknown, another client's, expired or revoked.
    Invalid,
}

/// A presented token that may have a successor.
pub enum Rotating {
    /// Unused and live: it is marked used as its successor is written.
    Fresh(RefreshToken),
    /// A retry within the grace window: another successor, and nothing tripped.
    GraceRetry(RefreshToken),
}

impl Rotating {
    pub fn token(&self) -> &RefreshToken {
        match self {
            Self::Fresh(t) | Self::GraceRetry(t) => t,
        }
    }
}

/// What a stored token allows its presenter, before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Another client's, revoked, or expired: refused, and nothing is revealed.
    Invalid,
    /// Unused and live: it may rotate.
    Fresh,
    /// Rotated before, at `at`: a retry within the grace window, or a replay.
    Used { at: UnixTime },
}

pub fn verdict(token: &RefreshToken, client_id: &str, now: UnixTime) -> Verdict {
    // Bound to its client; another client learns nothing, not even that it exists.
    if token.client_id != client_id || token.revoked_at.is_some() || now >= token.absolute_expires_at {
        return Verdict::Invalid;
    }
    match token.used_at {
        Some(at) => Verdict::Used { at },
        None if now >= token.idle_expires_at => Verdict::Invalid,
        None => Verdict::Fresh,
    }
}

/// Whether the presenter proved the key a bound family needs (an unbound one needs none).
pub fn proves_binding(token: &RefreshToken, proof_jkt: Option<&str>) -> bool {
    matches_binding(token.dpop_jkt.as_deref(), proof_jkt)
}

/// Whether the presenter came with the certificate a bound family needs (an unbound one needs none).
pub fn proves_certificate(token: &RefreshToken, presented_x5t: Option<&str>) -> bool {
    matches_binding(token.x5t_s256.as_deref(), presented_x5t)
}

fn matches_binding(bound: Option<&str>, presented: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match (bound, presented) {
        (None, _) => true,
        (Some(bound), Some(presented)) => bool::from(bound.as_bytes().ct_eq(presented.as_bytes())),
        (Some(_), None) => false,
    }
}

/// A used token presented again within `grace` seconds of its rotation is a lost answer's retry.
pub fn is_grace_retry(used_at: UnixTime, now: UnixTime, grace: i64) -> bool {
    now - used_at <= grace
}

/// Judges a presented token (`stored`, as looked up by its hash), before the new access token is
/// made. Writes nothing, except that a replay past the grace window revokes the family.
pub async fn present(state: &AppState, client_id: &str, stored: Option<RefreshToken>, now: UnixTime) -> Result<Result<Rotating, Refused>, AppError> {
    let Some(token) = stored else { return Ok(Err(Refused::Invalid)) };
    match verdict(&token, client_id, now) {
        Verdict::Invalid => Ok(Err(Refused::Invalid)),
        Verdict::Fresh => Ok(Ok(Rotating::Fresh(token))),
        Verdict::Used { at } if is_grace_retry(at, now, state.config.tokens.refresh_reuse_grace.as_secs() as i64) => Ok(Ok(Rotating::GraceRetry(token))),
        Verdict::Used { .. } => {
            revoke_family(state, &token.family_id).await?;
            state.metrics.security_event("refresh_token_reuse");
            tracing::warn!(client_id, family_id = %token.family_id, "rotated refresh token reused: family revoked");
            Ok(Err(Refused::Reused))
        }
    }
}

/// Writes the successor of a presented token together with the jti of the access token issued
/// beside it (`access_jti`, `access_exp`), and returns the successor. A fresh token is marked used
/// in the same transaction, so a failure leaves it unused; at most one concurrent caller rotates
/// it, and the others are judged again as what they now are (a grace retry, most likely).
pub async fn rotate(state: &AppState, rotating: &Rotating, access_jti: &str, access_exp: UnixTime, now: UnixTime) -> Result<Result<String, Refused>, AppError> {
    let presented = rotating.token();
    let (token, successor) = new_token(state, &presented.family_id, &NewRefreshGrant::continuing(presented), now);
    let durable = &state.durable;
    match rotating {
        Rotating::GraceRetry(_) => durable.add_refresh_successor(&successor, access_jti, access_exp).await?,
        Rotating::Fresh(_) => {
            if !durable.rotate_refresh_token(&presented.token_hash, now, &successor, access_jti, access_exp).await? {
                // A concurrent request rotated it, or revoked its family, a moment ago.
                let again = durable.refresh_token(&presented.token_hash).await?;
                match present(state, &presented.client_id, again, now).await? {
                    Ok(Rotating::GraceRetry(_)) => durable.add_refresh_successor(&successor, access_jti, access_exp).await?,
                    // Fresh again cannot follow a lost compare-and-set; refuse rather than loop.
                    Ok(Rotating::Fresh(_)) => return Ok(Err(Refused::Invalid)),
                    Err(refused) => return Ok(Err(refused)),
                }
            }
        }
    }
    Ok(Ok(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(used_at: Option<UnixTime>, revoked_at: Option<UnixTime>) -> RefreshToken {
        RefreshToken {
            token_hash: vec![1; 32],
            family_id: "f".into(),
            client_id: "app".into(),
            sub: "u".into(),
            scopes: vec!["openid".into()],
            auth_time: None,
            sid: None,
            created_at: 100,
            idle_expires_at: 200,
            absolute_expires_at: 300,
            used_at,
            revoked_at,
            dpop_jkt: None,
            x5t_s256: None,
        }
    }

    #[test]
    fn a_bound_family_needs_its_certificate_and_an_unbound_one_needs_none() {
        let bound = RefreshToken { x5t_s256: Some("abc".into()), ..token(None, None) };
        assert!(proves_certificate(&bound, Some("abc")));
        assert!(!proves_certificate(&bound, Some("abd")), "another certificate");
        assert!(!proves_certificate(&bound, None), "no certificate");
        assert!(proves_certificate(&token(None, None), None));
        assert!(proves_certificate(&token(None, None), Some("abc")));
    }

    #[test]
    fn a_token_is_fresh_only_for_its_client_while_live_and_unused() {
        assert_eq!(verdict(&token(None, None), "app", 150), Verdict::Fresh);
        assert_eq!(verdict(&token(None, None), "other", 150), Verdict::Invalid, "another client's token");
        assert_eq!(verdict(&token(None, Some(120)), "app", 150), Verdict::Invalid, "revoked");
        assert_eq!(verdict(&token(None, None), "app", 200), Verdict::Invalid, "idle expiry");
        assert_eq!(verdict(&token(Some(140), None), "app", 250), Verdict::Used { at: 140 }, "used: judged by reuse, not idle expiry");
        assert_eq!(verdict(&token(Some(140), None), "app", 300), Verdict::Invalid, "the family's absolute expiry ends everything");
        assert_eq!(verdict(&token(Some(140), None), "other", 150), Verdict::Invalid, "another client learns nothing of reuse");
    }

    #[test]
    fn only_a_prompt_retry_is_forgiven() {
        assert!(is_grace_retry(100, 100, 5));
        assert!(is_grace_retry(100, 105, 5));
        assert!(!is_grace_retry(100, 106, 5));
        assert!(!is_grace_retry(100, 101, 0) && is_grace_retry(100, 100, 0));
    }
}
