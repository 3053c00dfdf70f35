//! Issuing and managing API keys: the rules the CLI and the admin API share.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AdminError;
use crate::oauth::scope::Scopes;
use crate::api_keys::verify::Verifier;
use crate::api_keys::{cache, format, VerifiedKey};
use crate::clock::UnixTime;
use crate::config::Config;
use crate::crypto::secrets::{hash_secret, random_token};
use crate::store::{ApiKey, ApiKeyUsage, AuditEvent, Durable, Ephemeral};
use crate::tokens::deny_list::{client_denial, DenyList};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NewApiKey {
    pub name: String,
    pub scope: Option<String>,
    /// Default and upper bound: the environment's maximum lifetime.
    #[serde(with = "humantime_serde")]
    pub expires_in: Option<Duration>,
    /// `dev`, `staging` or `prod` (default `dev`).
    pub env: Option<String>,
    pub cidrs: Vec<String>,
    pub rate_limit_per_minute: Option<i64>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct IssuedApiKey {
    pub id: String,
    /// Shown once; only its hash is stored.
    pub key: String,
    pub name: String,
    pub env: String,
    pub scopes: Vec<String>,
    pub expires_at: UnixTime,
}

/// What `list` shows: never the key.
#[derive(Debug, Serialize)]
pub struct ApiKeySummary {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub env: String,
    pub scopes: Vec<String>,
    pub expires_at: UnixTime,
    pub state: &'static str,
    pub cidrs: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub last_used_at: Option<UnixTime>,
    pub last_used_from: Option<String>,
    pub replaced_by: Option<String>,
    pub grace_until: Option<UnixTime>,
}

pub fn summary(k: &ApiKey, now: UnixTime) -> ApiKeySummary {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if now >= k.expires_at {
        "expired"
    } else if k.grace_until.is_some_and(|g| now >= g) {
        "superseded"
    } else if k.grace_until.is_some() {
        "rotating"
    } else {
        "active"
    };
    ApiKeySummary {
        id: k.id.clone(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        env: k.env.clone(),
        scopes: k.scopes.clone(),
        expires_at: k.expires_at,
        state,
        cidrs: k.cidrs.clone(),
        rate_limit_per_minute: k.rate_limit_per_minute,
        last_used_at: k.last_used_at,
        last_used_from: k.last_used_from.clone(),
        replaced_by: k.replaced_by.clone(),
        grace_until: k.grace_until,
    }
}

fn build(config: &Config, spec: &NewApiKey, now: UnixTime) -> Result<(ApiKey, String), AdminError> {
    let invalid = |m: String| AdminError::Invalid(m);
    let name = spec.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(invalid("an API key needs a name (at most 200 characters)".into()));
    }
    let env = spec.env.as_deref().unwrap_or("dev");
    let max = config.api_keys.max_lifetime.get(env).ok_or_else(|| invalid(format!("env must be one of {}", format::ENVS.join(", "))))?.0;
    let lifetime = spec.expires_in.unwrap_or(max);
    if lifetime.is_zero() || lifetime > max {
        return Err(invalid(format!("expires-in must be between 1s and {} for {env} keys", humantime::format_duration(max))));
    }
    for cidr in &spec.cidrs {
        if cidr.parse::<IpNet>().is_err() {
            return Err(invalid(format!("`{cidr}` is not a CIDR like 10.0.0.0/8")));
        }
    }
    let rate = spec.rate_limit_per_minute.unwrap_or_else(|| config.api_keys.default_rate_limit.get(env).unwrap_or(60));
    if rate < 1 {
        return Err(invalid("rate-limit must be at least 1 per minute".into()));
    }
    let metadata = spec.metadata.clone().unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        return Err(invalid("metadata must be a JSON object".into()));
    }
    let key = format::generate(env);
    let record = ApiKey {
        id: format!("ak_{}", random_token(12)),
        name: name.to_string(),
        env: env.to_string(),
        key_hash: hash_secret(&key),
        prefix: format::display_prefix(&key),
        scopes: Scopes::parse(spec.scope.as_deref().unwrap_or(""))?.into_vec(),
        created_at: now,
        expires_at: now + lifetime.as_secs() as i64,
        cidrs: spec.cidrs.clone(),
        rate_limit_per_minute: rate,
        metadata,
        last_used_at: None,
        last_used_from: None,
        revoked_at: None,
        grace_until: None,
        replaced_by: None,
    };
    Ok((record, key))
}

/// Where admin operations write: the stores, and (for the audit trail) who asked.
/// A key's use: per minute and summed.
#[derive(Debug, Serialize)]
pub struct KeyUsage {
    pub id: String,
    pub since: UnixTime,
    pub requests: i64,
    pub rate_limited: i64,
    pub denied: i64,
    pub minutes: Vec<ApiKeyUsage>,
}

pub struct Admin<'a> {
    pub config: &'a Config,
    pub durable: &'a dyn Durable,
    /// Through it, revocations reach every node's cache at once.
    pub ephemeral: &'a dyn Ephemeral,
    pub actor: &'a str,
    pub now: UnixTime,
}

impl Admin<'_> {
    /// The audit event of an admin change; the store writes it with the change itself.
    fn audit_event(&self, kind: &str, subject: &str, details: serde_json::Value) -> AuditEvent {
        super::audit_event(kind, subject, self.actor, self.now, details)
    }

    async fn invalidate(&self) -> Result<(), AdminError> {
        Ok(cache::broadcast_invalidation(self.ephemeral).await?)
    }

    pub async fn generate(&self, spec: &NewApiKey) -> Result<IssuedApiKey, AdminError> {
        let (record, key) = build(self.config, spec, self.now)?;
        let audit = self.audit_event("api_key.generate", &record.id, json!({"name": record.name, "env": record.env, "scopes": record.scopes}));
        self.durable.insert_api_key(&record, &audit).await?;
        Ok(IssuedApiKey { id: record.id, key, name: record.name, env: record.env, scopes: record.scopes, expires_at: record.expires_at })
    }

    pub async fn list(&self) -> Result<Vec<ApiKeySummary>, AdminError> {
        Ok(self.durable.api_keys().await?.iter().map(|k| summary(k, self.now)).collect())
    }

    /// The key's use per minute from `since` on (flushed minutes only: the current one and
    /// the one before it are still being counted), with totals.
    pub async fn usage(&self, id: &str, since: UnixTime) -> Result<KeyUsage, AdminError> {
        if self.durable.api_key(id).await?.is_none() {
            return Err(AdminError::NotFound(format!("API key {id}")));
        }
        let minutes = self.durable.api_key_usage(id, since).await?;
        let total = |f: fn(&ApiKeyUsage) -> i64| minutes.iter().map(f).sum();
        Ok(KeyUsage {
            id: id.to_string(),
            since,
            requests: total(|m| m.requests),
            rate_limited: total(|m| m.rate_limited),
            denied: total(|m| m.denied),
            minutes,
        })
    }

    /// Revokes the key and, with it, every access token bought with it.
    pub async fn revoke(&self, id: &str) -> Result<(), AdminError> {
        let tokens = client_denial(id, self.config.api_keys.exchanged_token_ttl, self.now);
        if !self.durable.revoke_api_key(id, self.now, &tokens, &self.audit_event("api_key.revoke", id, json!({}))).await? {
            return Err(AdminError::NotFound(format!("live API key {id}")));
        }
        DenyList { durable: self.durable, ephemeral: self.ephemeral }.cache(&tokens, self.now).await?;
        self.invalidate().await
    }

    /// Issues a successor with the same policy; the old key works until the grace period ends.
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<IssuedApiKey, AdminError> {
        let old = self.durable.api_key(id).await?.ok_or_else(|| AdminError::NotFound(format!("API key {id}")))?;
        if old.revoked_at.is_some() || old.replaced_by.is_some() || self.now >= old.expires_at {
            return Err(AdminError::Invalid(format!("API key {id} is not active; only an active key can be rotated")));
        }
        let spec = NewApiKey {
            name: old.name.clone(),
            scope: Some(old.scopes.join(" ")),
            expires_in: None,
            env: Some(old.env.clone()),
            cidrs: old.cidrs.clone(),
            rate_limit_per_minute: Some(old.rate_limit_per_minute),
            metadata: Some(old.metadata.clone()),
        };
        let (record, key) = build(self.config, &spec, self.now)?;
        let grace_until = (self.now + grace.as_secs() as i64).min(old.expires_at);
        let audit = self.audit_event("api_key.rotate", id, json!({"successor": record.id, "grace_until": grace_until}));
        if !self.durable.rotate_api_key(id, &record, grace_until, &audit).await? {
            return Err(AdminError::Invalid(format!("API key {id} changed meanwhile; try again")));
        }
        self.invalidate().await?;
        Ok(IssuedApiKey { id: record.id, key, name: record.name, env: record.env, scopes: record.scopes, expires_at: record.expires_at })
    }
}

#[derive(Debug, Serialize)]
pub struct KeyTest {
    pub valid: bool,
    pub reason: Option<&'static str>,
    pub key: Option<VerifiedKey>,
    pub lookup_micros: u128,
}

/// Checks a key as a resource server would (without a caller address).
pub async fn test(verifier: &Verifier<'_>, key: &str) -> Result<KeyTest, AdminError> {
    let started = Instant::now();
    let outcome = verifier.verify(key, None).await?;
    let lookup_micros = started.elapsed().as_micros();
    Ok(match outcome {
        Ok(k) => KeyTest { valid: true, reason: None, key: Some(k), lookup_micros },
        Err(r) => KeyTest { valid: false, reason: Some(r.reason()), key: None, lookup_micros },
    })
}
