//! Verifying a presented API key: offline format check, hash lookup (cached), then policy:
//! expiry, revocation, rotation grace, network binding, rate limit. A check writes nothing to
//! the database: its use is counted per minute in the ephemeral store (see `usage`), and
//! the last use is recorded at most once a minute per key. The audit log gets the security
//! events: a refusal by the key's rules (once per key, reason and minute; the rest are
//! counted), the rate limit crossed, use from a new address.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

use super::cache::ApiKeyCache;
use super::format;
use super::usage;
use crate::audit::{self, Event};
use crate::clock::UnixTime;
use crate::crypto::secrets::hash_secret;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::{ApiKey, Durable, Ephemeral};

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
    /// When the key stops working: its expiry, or the end of its rotation grace if sooner.
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

/// What verifying a key needs, and nothing more: the stores, this node's key cache and
/// metrics, and the time. The server builds one per request; the CLI builds one from the stores.
pub struct Verifier<'a> {
    pub durable: &'a dyn Durable,
    pub ephemeral: &'a dyn Ephemeral,
    pub cache: &'a ApiKeyCache,
    pub metrics: &'a Metrics,
    pub now: UnixTime,
}

impl<'a> Verifier<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self { durable: state.durable.as_ref(), ephemeral: state.ephemeral.as_ref(), cache: &state.api_key_cache, metrics: &state.metrics, now: state.now() }
    }
}

/// `Verifier::of(state).verify(...)`.
pub async fn verify(state: &AppState, presented: &str, caller: Option<IpAddr>) -> Result<Result<VerifiedKey, Rejection>, AppError> {
    Verifier::of(state).verify(presented, caller).await
}

/// The key's own rules at `now`, for a caller at `caller` (when known): revocation, expiry,
/// rotation grace, allowed networks. Pure; the rate limit needs a shared count and comes after.
pub fn policy(key: &ApiKey, caller: Option<IpAddr>, now: UnixTime) -> Result<(), Rejection> {
    if key.revoked_at.is_some() {
        return Err(Rejection::Revoked);
    }
    if now >= key.expires_at {
        return Err(Rejection::Expired);
    }
    if key.grace_until.is_some_and(|until| now >= until) {
        return Err(Rejection::Superseded);
    }
    if let Some(ip) = caller {
        let allowed = key.cidrs.is_empty() || key.cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).any(|net| net.contains(&ip));
        if !allowed {
            return Err(Rejection::AddressNotAllowed);
        }
    }
    Ok(())
}

/// The `count`th use in the current minute against a limit per minute; a refusal says when the
/// next minute starts.
pub fn rate_verdict(count: u64, limit: u64, now: UnixTime) -> Result<(), Rejection> {
    if count > limit {
        return Err(Rejection::RateLimited { retry_after: (60 - now.rem_euclid(60)).max(1) as u64 });
    }
    Ok(())
}

impl Verifier<'_> {
    pub async fn verify(&self, presented: &str, caller: Option<IpAddr>) -> Result<Result<VerifiedKey, Rejection>, AppError> {
        if format::parse(presented).is_none() {
            self.metrics.security_event("api_key_malformed");
            return Ok(Err(Rejection::Malformed));
        }
        let hash = hash_secret(presented);
        let key = match self.cache.get(&hash) {
            Some(cached) => cached,
            None => {
                let found = self.durable.api_key_by_hash(&hash).await?;
                self.cache.insert(hash, found.clone());
                found
            }
        };
        let Some(key) = key else {
            self.metrics.security_event("api_key_unknown");
            return Ok(Err(Rejection::Unknown));
        };
        let caller_text = caller.map(|ip| ip.to_string());
        let outcome = match policy(&key, caller, self.now) {
            Ok(()) => self.rate_limit(&key, caller_text.as_deref()).await?,
            Err(refused) => {
                self.refused(&key, caller_text, &refused).await?;
                return Ok(Err(refused));
            }
        };
        if outcome.is_ok() {
            self.after_success(&key, caller_text.as_deref()).await?;
        }
        Ok(outcome.map(|()| VerifiedKey { id: key.id, name: key.name, env: key.env, scopes: key.scopes, expires_at: key.grace_until.map_or(key.expires_at, |grace| grace.min(key.expires_at)) }))
    }

    /// Counts a refusal by the key's rules and audits the first of its kind each minute: a
    /// revoked key hammered by whoever holds it costs one row a minute, not one per try.
    async fn refused(&self, key: &ApiKey, caller: Option<String>, rejection: &Rejection) -> Result<(), AppError> {
        usage::count_denied(self.ephemeral, key, self.now).await?;
        let first_this_minute = format!("apikey:refused:{}:{}:{}", key.id, rejection.reason(), usage::minute_of(self.now));
        if !self.ephemeral.put_if_absent(&first_this_minute, b"1", Duration::from_secs(61)).await? {
            return Ok(());
        }
        let event = Event {
            kind: "api_key.refused",
            subject: &key.id,
            caller,
            ok: false,
            reason: Some(rejection.reason()),
            details: json!({"name": key.name, "env": key.env, "note": "audited once per key, reason and minute; every refusal is counted in the key's usage"}),
        };
        audit::append(self.durable, self.now, event).await
    }

    async fn rate_limit(&self, key: &ApiKey, caller: Option<&str>) -> Result<Result<(), Rejection>, AppError> {
        let count = usage::count_admitted(self.ephemeral, key, self.now).await?;
        let verdict = rate_verdict(count.max(0) as u64, key.rate_limit_per_minute.max(0) as u64, self.now);
        // Flag the crossing once per minute, not every refused call.
        if verdict.is_err() && count == key.rate_limit_per_minute + 1 {
            self.suspicious(key, caller.map(str::to_string), "rate limit exceeded").await?;
        }
        Ok(verdict)
    }

    async fn after_success(&self, key: &ApiKey, caller: Option<&str>) -> Result<(), AppError> {
        if let Some(ip) = caller {
            let first_from_here = self.ephemeral.put_if_absent(&format!("apikey:seen:{}:{ip}", key.id), b"1", KNOWN_ADDRESS_TTL).await?;
            if first_from_here {
                // The very first use of a key establishes its address; later new addresses stand out.
                let first_use = self.ephemeral.put_if_absent(&format!("apikey:used:{}", key.id), b"1", KNOWN_ADDRESS_TTL).await?;
                let used_elsewhere = !first_use || key.last_used_from.as_deref().is_some_and(|from| from != ip);
                if used_elsewhere {
                    self.suspicious(key, Some(ip.to_string()), "use from a new address").await?;
                }
            }
        }
        if self.ephemeral.put_if_absent(&format!("apikey:touch:{}", key.id), b"1", TOUCH_EVERY).await? {
            self.durable.touch_api_key(&key.id, self.now, caller).await?;
        }
        Ok(())
    }

    async fn suspicious(&self, key: &ApiKey, caller: Option<String>, reason: &str) -> Result<(), AppError> {
        self.metrics.security_event("api_key_suspicious");
        tracing::warn!(key_id = %key.id, caller = caller.as_deref().unwrap_or("-"), reason, "suspicious API key use");
        let event = Event { kind: "api_key.suspicious", subject: &key.id, caller, ok: false, reason: Some(reason), details: json!({"name": key.name}) };
        audit::append(self.durable, self.now, event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey {
            id: "k".into(),
            name: "n".into(),
            env: "prod".into(),
            key_hash: vec![0; 32],
            prefix: "ses_prod_abcd".into(),
            scopes: vec![],
            created_at: 0,
            expires_at: 1_000,
            cidrs: vec![],
            rate_limit_per_minute: 10,
            metadata: serde_json::Value::Null,
            last_used_at: None,
            last_used_from: None,
            revoked_at: None,
            grace_until: None,
            replaced_by: None,
        }
    }

    #[test]
    fn revoked_expired_and_superseded_keys_are_refused_in_that_order() {
        assert_eq!(policy(&key(), None, 999), Ok(()));
        assert_eq!(policy(&key(), None, 1_000), Err(Rejection::Expired), "expiry is exclusive");
        let rotated = ApiKey { grace_until: Some(500), ..key() };
        assert_eq!(policy(&rotated, None, 499), Ok(()), "within its grace");
        assert_eq!(policy(&rotated, None, 500), Err(Rejection::Superseded));
        let revoked = ApiKey { revoked_at: Some(1), grace_until: Some(500), ..key() };
        assert_eq!(policy(&revoked, None, 1_000), Err(Rejection::Revoked), "revocation wins over everything");
    }

    #[test]
    fn networks_bind_only_a_known_caller() {
        let bound = ApiKey { cidrs: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()], ..key() };
        assert_eq!(policy(&bound, Some("10.1.2.3".parse().unwrap()), 0), Ok(()));
        assert_eq!(policy(&bound, Some("2001:db8::1".parse().unwrap()), 0), Ok(()));
        assert_eq!(policy(&bound, Some("192.0.2.1".parse().unwrap()), 0), Err(Rejection::AddressNotAllowed));
        assert_eq!(policy(&bound, None, 0), Ok(()), "no caller address (the CLI's test): networks cannot apply");
        let garbage = ApiKey { cidrs: vec!["not a network".into()], ..key() };
        assert_eq!(policy(&garbage, Some("10.1.2.3".parse().unwrap()), 0), Err(Rejection::AddressNotAllowed), "a bad stored network allows nobody");
    }

    #[test]
    fn the_rate_limit_refuses_past_the_limit_until_the_next_minute() {
        assert_eq!(rate_verdict(10, 10, 125), Ok(()));
        assert_eq!(rate_verdict(11, 10, 125), Err(Rejection::RateLimited { retry_after: 55 }));
        assert_eq!(rate_verdict(11, 10, 179), Err(Rejection::RateLimited { retry_after: 1 }));
        assert_eq!(rate_verdict(11, 10, 120), Err(Rejection::RateLimited { retry_after: 60 }));
    }
}
