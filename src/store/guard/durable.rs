//! The durable store behind its gate: every method of every store trait, each one call.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::gate::{Gate, Probe};
use crate::clock::UnixTime;
use crate::crypto::alg::SigningAlg;
use crate::store::*;

pub struct GuardedDurable {
    inner: Arc<dyn Durable>,
    gate: Gate,
}

impl GuardedDurable {
    pub fn new(inner: Arc<dyn Durable>, budget: Duration) -> Self {
        let pinged = inner.clone();
        let probe: Probe = Arc::new(move || {
            let store = pinged.clone();
            Box::pin(async move { store.ping().await })
        });
        Self { inner, gate: Gate::new("the database", budget, probe) }
    }

    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }
}

#[async_trait]
impl ClientStore for GuardedDurable {
    async fn insert_client(&self, client: &Client, audit: &AuditEvent) -> StoreResult<()> {
        self.gate.run(self.inner.insert_client(client, audit)).await
    }
    async fn client(&self, id: &str) -> StoreResult<Option<Client>> {
        self.gate.run(self.inner.client(id)).await
    }
    async fn clients(&self) -> StoreResult<Vec<Client>> {
        self.gate.run(self.inner.clients()).await
    }
    async fn delete_client(&self, id: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.delete_client(id, audit)).await
    }
    async fn set_client_secret_hash(&self, id: &str, hash: &[u8], audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.set_client_secret_hash(id, hash, audit)).await
    }
}

#[async_trait]
impl UserStore for GuardedDurable {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        self.gate.run(self.inner.insert_user(user)).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.gate.run(self.inner.user_by_username(username)).await
    }
    async fn user(&self, sub: &str) -> StoreResult<Option<User>> {
        self.gate.run(self.inner.user(sub)).await
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        self.gate.run(self.inner.users()).await
    }
    async fn set_password_hash(&self, username: &str, hash: &str) -> StoreResult<bool> {
        self.gate.run(self.inner.set_password_hash(username, hash)).await
    }
    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool> {
        self.gate.run(self.inner.set_user_disabled(username, disabled)).await
    }
}

#[async_trait]
impl RoleStore for GuardedDurable {
    async fn user_roles(&self, sub: &str) -> StoreResult<Vec<String>> {
        self.gate.run(self.inner.user_roles(sub)).await
    }
    async fn grant_role(&self, sub: &str, role: &str, now: UnixTime) -> StoreResult<bool> {
        self.gate.run(self.inner.grant_role(sub, role, now)).await
    }
    async fn remove_role(&self, sub: &str, role: &str) -> StoreResult<bool> {
        self.gate.run(self.inner.remove_role(sub, role)).await
    }
}

#[async_trait]
impl DenialStore for GuardedDurable {
    async fn insert_denial(&self, denial: &Denial) -> StoreResult<()> {
        self.gate.run(self.inner.insert_denial(denial)).await
    }
    async fn live_denials(&self, now: UnixTime) -> StoreResult<Vec<Denial>> {
        self.gate.run(self.inner.live_denials(now)).await
    }
}

#[async_trait]
impl SigningKeyStore for GuardedDurable {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        self.gate.run(self.inner.signing_keys()).await
    }
    async fn key_generation(&self, alg: SigningAlg) -> StoreResult<i64> {
        self.gate.run(self.inner.key_generation(alg)).await
    }
    async fn change_keys(&self, alg: SigningAlg, expected: i64, add: Option<&StoredSigningKey>, remove: &[String]) -> StoreResult<bool> {
        self.gate.run(self.inner.change_keys(alg, expected, add, remove)).await
    }
}

#[async_trait]
impl ConsentStore for GuardedDurable {
    async fn consented_scopes(&self, sub: &str, client_id: &str) -> StoreResult<Vec<String>> {
        self.gate.run(self.inner.consented_scopes(sub, client_id)).await
    }
    async fn save_consent(&self, sub: &str, client_id: &str, scopes: &[String], now: UnixTime) -> StoreResult<()> {
        self.gate.run(self.inner.save_consent(sub, client_id, scopes, now)).await
    }
    async fn revoke_consent(&self, sub: &str, client_id: &str) -> StoreResult<()> {
        self.gate.run(self.inner.revoke_consent(sub, client_id)).await
    }
}

#[async_trait]
impl RefreshTokenStore for GuardedDurable {
    async fn start_refresh_family(&self, family: &RefreshFamily, first: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()> {
        self.gate.run(self.inner.start_refresh_family(family, first, access_jti, access_exp)).await
    }
    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshToken>> {
        self.gate.run(self.inner.refresh_token(hash)).await
    }
    async fn rotate_refresh_token(&self, presented_hash: &[u8], now: UnixTime, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<bool> {
        self.gate.run(self.inner.rotate_refresh_token(presented_hash, now, successor, access_jti, access_exp)).await
    }
    async fn add_refresh_successor(&self, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()> {
        self.gate.run(self.inner.add_refresh_successor(successor, access_jti, access_exp)).await
    }
    async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> StoreResult<Vec<(String, UnixTime)>> {
        self.gate.run(self.inner.revoke_refresh_family(family_id, now)).await
    }
}

#[async_trait]
impl ApiKeyStore for GuardedDurable {
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditEvent) -> StoreResult<()> {
        self.gate.run(self.inner.insert_api_key(key, audit)).await
    }
    async fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ApiKey>> {
        self.gate.run(self.inner.api_key_by_hash(hash)).await
    }
    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        self.gate.run(self.inner.api_key(id)).await
    }
    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.gate.run(self.inner.api_keys()).await
    }
    async fn revoke_api_key(&self, id: &str, now: UnixTime, tokens: &Denial, audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.revoke_api_key(id, now, tokens, audit)).await
    }
    async fn rotate_api_key(&self, id: &str, successor: &ApiKey, grace_until: UnixTime, audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.rotate_api_key(id, successor, grace_until, audit)).await
    }
    async fn touch_api_key(&self, id: &str, at: UnixTime, from: Option<&str>) -> StoreResult<()> {
        self.gate.run(self.inner.touch_api_key(id, at, from)).await
    }
}

#[async_trait]
impl FactorStore for GuardedDurable {
    async fn insert_factor(&self, factor: &Factor, audit: &AuditEvent) -> StoreResult<()> {
        self.gate.run(self.inner.insert_factor(factor, audit)).await
    }
    async fn factor(&self, id: &str) -> StoreResult<Option<Factor>> {
        self.gate.run(self.inner.factor(id)).await
    }
    async fn factors(&self, sub: &str) -> StoreResult<Vec<Factor>> {
        self.gate.run(self.inner.factors(sub)).await
    }
    async fn confirm_factor(&self, id: &str, step: i64, now: UnixTime, audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.confirm_factor(id, step, now, audit)).await
    }
    async fn accept_factor_step(&self, id: &str, step: i64, now: UnixTime) -> StoreResult<bool> {
        self.gate.run(self.inner.accept_factor_step(id, step, now)).await
    }
    async fn update_passkey(&self, id: &str, expected: &str, credential: &str, now: UnixTime) -> StoreResult<bool> {
        self.gate.run(self.inner.update_passkey(id, expected, credential, now)).await
    }
    async fn delete_factor(&self, sub: &str, id: &str, audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.delete_factor(sub, id, audit)).await
    }
    async fn delete_all_factors(&self, sub: &str, audit: &AuditEvent) -> StoreResult<(u64, u64)> {
        self.gate.run(self.inner.delete_all_factors(sub, audit)).await
    }
    async fn replace_recovery_codes(&self, sub: &str, hashes: &[Vec<u8>], now: UnixTime, audit: &AuditEvent) -> StoreResult<()> {
        self.gate.run(self.inner.replace_recovery_codes(sub, hashes, now, audit)).await
    }
    async fn use_recovery_code(&self, sub: &str, hash: &[u8], now: UnixTime, audit: &AuditEvent) -> StoreResult<bool> {
        self.gate.run(self.inner.use_recovery_code(sub, hash, now, audit)).await
    }
    async fn recovery_codes_left(&self, sub: &str) -> StoreResult<i64> {
        self.gate.run(self.inner.recovery_codes_left(sub)).await
    }
}

#[async_trait]
impl LogoutOutboxStore for GuardedDurable {
    async fn enqueue_logouts(&self, deliveries: &[LogoutDelivery]) -> StoreResult<()> {
        self.gate.run(self.inner.enqueue_logouts(deliveries)).await
    }
    async fn claim_logouts(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> StoreResult<Vec<LogoutDelivery>> {
        self.gate.run(self.inner.claim_logouts(now, lease_until, limit)).await
    }
    async fn settle_logout(&self, id: &str, outcome: &LogoutOutcome) -> StoreResult<()> {
        self.gate.run(self.inner.settle_logout(id, outcome)).await
    }
    async fn logouts_of_session(&self, sid: &str) -> StoreResult<Vec<(LogoutDelivery, Option<UnixTime>)>> {
        self.gate.run(self.inner.logouts_of_session(sid)).await
    }
    async fn prune_logouts(&self, before: UnixTime) -> StoreResult<u64> {
        self.gate.run(self.inner.prune_logouts(before)).await
    }
}

#[async_trait]
impl UpstreamIdentityStore for GuardedDurable {
    async fn upstream_link(&self, provider_id: &str, upstream_subject: &str) -> StoreResult<Option<UpstreamLink>> {
        self.gate.run(self.inner.upstream_link(provider_id, upstream_subject)).await
    }
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
        self.gate.run(self.inner.users_by_email(email)).await
    }
    async fn insert_upstream_link(&self, link: &UpstreamLink, new_user: Option<&User>, audit: &AuditEvent) -> StoreResult<()> {
        self.gate.run(self.inner.insert_upstream_link(link, new_user, audit)).await
    }
    async fn record_upstream_sign_in(&self, link: &UpstreamLink, groups: &[String], now: UnixTime) -> StoreResult<()> {
        self.gate.run(self.inner.record_upstream_sign_in(link, groups, now)).await
    }
    async fn user_groups(&self, sub: &str) -> StoreResult<Vec<String>> {
        self.gate.run(self.inner.user_groups(sub)).await
    }
}

#[async_trait]
impl SsoSessionStore for GuardedDurable {
    async fn insert_sso_session(&self, session: &SsoSession) -> StoreResult<()> {
        self.gate.run(self.inner.insert_sso_session(session)).await
    }
    async fn sso_session(&self, sid: &str) -> StoreResult<Option<SsoSession>> {
        self.gate.run(self.inner.sso_session(sid)).await
    }
    async fn touch_sso_session(&self, sid: &str, now: UnixTime, expires_at: UnixTime) -> StoreResult<bool> {
        self.gate.run(self.inner.touch_sso_session(sid, now, expires_at)).await
    }
    async fn record_sso_session_factor(&self, sid: &str, amr: &[String], at: UnixTime, expires_at: UnixTime) -> StoreResult<bool> {
        self.gate.run(self.inner.record_sso_session_factor(sid, amr, at, expires_at)).await
    }
    async fn record_sso_session_client(&self, sid: &str, client_id: &str, now: UnixTime) -> StoreResult<()> {
        self.gate.run(self.inner.record_sso_session_client(sid, client_id, now)).await
    }
    async fn live_sso_sessions(&self, sub: Option<&str>, now: UnixTime) -> StoreResult<Vec<SsoSessionWithClients>> {
        self.gate.run(self.inner.live_sso_sessions(sub, now)).await
    }
    async fn end_sso_session(&self, sid: &str, reason: &str, revoke_grants: bool, now: UnixTime, audit: &AuditEvent) -> StoreResult<Option<EndedSsoSession>> {
        self.gate.run(self.inner.end_sso_session(sid, reason, revoke_grants, now, audit)).await
    }
    async fn prune_sso_sessions(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        self.gate.run(self.inner.prune_sso_sessions(before, limit)).await
    }
}

#[async_trait]
impl AuditStore for GuardedDurable {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.gate.run(self.inner.append_audit(event)).await
    }
    async fn recent_audit(&self, subject: Option<&str>, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        self.gate.run(self.inner.recent_audit(subject, limit)).await
    }
    async fn audit_page(&self, since: UnixTime, until: UnixTime, after: i64, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        self.gate.run(self.inner.audit_page(since, until, after, limit)).await
    }
}

#[async_trait]
impl ApiKeyUsageStore for GuardedDurable {
    async fn record_api_key_usage(&self, rows: &[ApiKeyUsage]) -> StoreResult<()> {
        self.gate.run(self.inner.record_api_key_usage(rows)).await
    }
    async fn api_key_usage(&self, key_id: &str, since: UnixTime) -> StoreResult<Vec<ApiKeyUsage>> {
        self.gate.run(self.inner.api_key_usage(key_id, since)).await
    }
}

#[async_trait]
impl RetentionStore for GuardedDurable {
    async fn prune_audit(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        self.gate.run(self.inner.prune_audit(before, limit)).await
    }
    async fn prune_api_keys(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        self.gate.run(self.inner.prune_api_keys(before, limit)).await
    }
    async fn prune_api_key_usage(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        self.gate.run(self.inner.prune_api_key_usage(before, limit)).await
    }
    async fn prune_refresh_families(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        self.gate.run(self.inner.prune_refresh_families(before, limit)).await
    }
}

#[async_trait]
impl Durable for GuardedDurable {
    async fn ping(&self) -> StoreResult<()> {
        self.gate.run(self.inner.ping()).await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
