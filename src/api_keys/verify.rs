//! Verifying a presented API key: offline format check, hash lookup (cached), then policy:
//! expiry, revocation, rotation grace, network binding, rate limit. Every verification of a
//! key that exists is audited (by key id, never the key).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use super::format;
use crate::audit::{self, Event};
use crate::clock::UnixTime;
use crate::crypto::secrets::hash_secret;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::ApiKey;

/// A use from a new address is remembered this long per key.
const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 86_400);
/// `last_used_*` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct VerifiedKey {
    pub id: String,
    pub name: String,
    pub env: String,
    pub scopes: Vec<String>,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Wrong shape or checksum: refused without touching the store.
    Malformed,
    Unknown,
    Expired,
    Revoked,
    /// Rotated, and its grace period is over.
    Superseded,
    AddressNotAllowed,
    RateLimited { retry_after: u64 },
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown key",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Superseded => "rotated; grace period over",
            Self::AddressNotAllowed => "address not allowed",
            Self::RateLimited { .. } => "rate limit exceeded",
        }
    }
}

pub async fn verify(state: &AppState, presented: &str, caller: Option<IpAddr>) -> Result<Result<VerifiedKey, Rejection>, AppError> {
    if format::parse(presented).is_none() {
        state.metrics.security_event("api_key_malformed");
        return Ok(Err(Rejection::Malformed));
    }
    let hash = hash_secret(presented);
    let key = match state.api_key_cache.get(&hash) {
        Some(cached) => cached,
        None => {
            let found = state.durable.api_key_by_hash(&hash).await?;
            state.api_key_cache.insert(hash, found.clone());
            found
        }
    };
    let Some(key) = key else {
        state.metrics.security_event("api_key_unknown");
        return Ok(Err(Rejection::Unknown));
    };
    let now = state.now();
    let caller_text = caller.map(|ip| ip.to_string());
    let outcome = check(state, &key, caller, now).await?;
    audit::record(
        state,
        Event {
            kind: "api_key.verify",
            subject: &key.id,
            caller: caller_text.clone(),
            ok: outcome.is_ok(),
            reason: outcome.as_ref().err().map(Rejection::reason),
            details: json!({"name": key.name, "env": key.env}),
        },
    )
    .await?;
    if outcome.is_ok() {
        after_success(state, &key, caller_text.as_deref(), now).await?;
    }
    Ok(outcome.map(|()| VerifiedKey { id: key.id, name: key.name, env: key.env, scopes: key.scopes, expires_at: key.expires_at }))
}

async fn check(state: &AppState, key: &ApiKey, caller: Option<IpAddr>, now: UnixTime) -> Result<Result<(), Rejection>, AppError> {
    if key.revoked_at.is_some() {
        return Ok(Err(Rejection::Revoked));
    }
    if now >= key.expires_at {
        return Ok(Err(Rejection::Expired));
    }
    if key.grace_until.is_some_and(|until| now >= until) {
        return Ok(Err(Rejection::Superseded));
    }
    if let Some(ip) = caller {
        let allowed = key.cidrs.is_empty() || key.cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).any(|net| net.contains(&ip));
        if !allowed {
            return Ok(Err(Rejection::AddressNotAllowed));
        }
    }
    let minute = now / 60;
    let count = state.ephemeral.incr(&format!("apikey:rate:{}:{minute}", key.id), Duration::from_secs(61)).await?;
    if count > key.rate_limit_per_minute {
        if count == key.rate_limit_per_minute + 1 {
            suspicious(state, key, caller.map(|c| c.to_string()), "rate limit exceeded").await?;
        }
        return Ok(Err(Rejection::RateLimited { retry_after: (60 - now % 60).max(1) as u64 }));
    }
    Ok(Ok(()))
}

async fn after_success(state: &AppState, key: &ApiKey, caller: Option<&str>, now: UnixTime) -> Result<(), AppError> {
    if let Some(ip) = caller {
        let first_from_here = state.ephemeral.put_if_absent(&format!("apikey:seen:{}:{ip}", key.id), b"1", KNOWN_ADDRESS_TTL).await?;
        // The very first use of a key establishes its address; later new addresses stand out.
        let first_use = state.ephemeral.put_if_absent(&format!("apikey:used:{}", key.id), b"1", KNOWN_ADDRESS_TTL).await?;
        let used_elsewhere = !first_use || key.last_used_from.as_deref().is_some_and(|from| from != ip);
        if first_from_here && used_elsewhere {
            suspicious(state, key, Some(ip.to_string()), "use from a new address").await?;
        }
    }
    if state.ephemeral.put_if_absent(&format!("apikey:touch:{}", key.id), b"1", TOUCH_EVERY).await? {
        state.durable.touch_api_key(&key.id, now, caller).await?;
    }
    Ok(())
}

async fn suspicious(state: &AppState, key: &ApiKey, caller: Option<String>, reason: &str) -> Result<(), AppError> {
    state.metrics.security_event("api_key_suspicious");
    tracing::warn!(key_id = %key.id, caller = caller.as_deref().unwrap_or("-"), reason, "suspicious API key use");
    audit::record(state, Event { kind: "api_key.suspicious", subject: &key.id, caller, ok: false, reason: Some(reason), details: json!({"name": key.name}) }).await
}
