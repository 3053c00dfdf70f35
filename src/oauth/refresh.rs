//! Refresh tokens: opaque, 256-bit, stored hashed, grouped in families (one per grant).
//! Every use rotates; a rotated token used again revokes its family, unless it comes back
//! within the grace window (a client's retry of a refresh whose answer it lost).

use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_secret, random_token};
use crate::error::AppError;
use crate::oauth::access_token;
use crate::state::AppState;
use crate::store::{RefreshFamily, RefreshToken};

pub struct NewRefreshGrant {
    pub client_id: String,
    pub sub: String,
    pub scopes: Vec<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
}

pub struct IssuedRefresh {
    pub token: String,
    pub family_id: String,
}

/// Starts a family (a code redemption) and issues its first token.
pub async fn issue_new_family(state: &AppState, grant: NewRefreshGrant, now: UnixTime) -> Result<IssuedRefresh, AppError> {
    let family = RefreshFamily {
        id: random_token(16),
        client_id: grant.client_id.clone(),
        sub: grant.sub.clone(),
        created_at: now,
        absolute_expires_at: now + state.config.tokens.refresh_absolute_ttl.as_secs() as i64,
    };
    state.durable.insert_refresh_family(&family).await?;
    let token = issue_in_family(state, &family.id, &grant, now).await?;
    Ok(IssuedRefresh { token, family_id: family.id })
}

/// Issues the next token of a family.
pub async fn issue_in_family(state: &AppState, family_id: &str, grant: &NewRefreshGrant, now: UnixTime) -> Result<String, AppError> {
    let token = generate_secret();
    state
        .durable
        .insert_refresh_token(&RefreshToken {
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
        })
        .await?;
    Ok(token)
}

/// Revokes every refresh token of the family and denies its live access tokens.
pub async fn revoke_family(state: &AppState, family_id: &str) -> Result<(), AppError> {
    for (jti, exp) in state.durable.revoke_refresh_family(family_id, state.now()).await? {
        access_token::deny(state, &jti, exp).await?;
    }
    Ok(())
}

pub async fn record_access_token(state: &AppState, family_id: &str, jti: &str, exp: UnixTime) -> Result<(), AppError> {
    state.durable.record_family_access_token(family_id, jti, exp).await?;
    Ok(())
}

/// The stored token, if it is one of ours.
pub async fn find(state: &AppState, token: &str) -> Result<Option<RefreshToken>, AppError> {
    Ok(state.durable.refresh_token(&hash_secret(token)).await?)
}

pub fn is_live(token: &RefreshToken, now: UnixTime) -> bool {
    token.revoked_at.is_none() && token.used_at.is_none() && now < token.idle_expires_at && now < token.absolute_expires_at
}

pub enum Rotation {
    /// The presented token is now used; issue its successor.
    Rotated(RefreshToken),
    /// A retry within the grace window: issue another successor, trip nothing.
    GraceRetry(RefreshToken),
    /// A rotated token came back late: the family is revoked.
    Reused,
    Invalid,
}

/// Consumes a presented token. At most one concurrent caller rotates a given token.
pub async fn rotate(state: &AppState, client_id: &str, presented: &str, now: UnixTime) -> Result<Rotation, AppError> {
    let hash = hash_secret(presented);
    let Some(token) = state.durable.refresh_token(&hash).await? else { return Ok(Rotation::Invalid) };
    // Bound to its client; another client learns nothing, not even that it exists.
    if token.client_id != client_id || token.revoked_at.is_some() || now >= token.absolute_expires_at {
        return Ok(Rotation::Invalid);
    }
    if token.used_at.is_none() {
        if now >= token.idle_expires_at {
            return Ok(Rotation::Invalid);
        }
        if state.durable.mark_refresh_token_used(&hash, now).await? {
            return Ok(Rotation::Rotated(token));
        }
    }
    // Used already (maybe a moment ago by a concurrent request): a retry or a replay.
    let used_at = state.durable.refresh_token(&hash).await?.and_then(|t| t.used_at).unwrap_or(now);
    if now - used_at <= state.config.tokens.refresh_reuse_grace.as_secs() as i64 {
        return Ok(Rotation::GraceRetry(token));
    }
    revoke_family(state, &token.family_id).await?;
    state.metrics.security_event("refresh_token_reuse");
    tracing::warn!(client_id, family_id = %token.family_id, "rotated refresh token reused: family revoked");
    Ok(Rotation::Reused)
}
