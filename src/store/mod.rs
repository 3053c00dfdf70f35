//! The two storage seams: durable (SQL) and ephemeral (Redis or in-process).

pub mod ephemeral;
pub mod guard;
pub mod models;
pub mod sql;

use crate::clock::UnixTime;
use crate::crypto::alg::SigningAlg;
use async_trait::async_trait;

pub use ephemeral::Ephemeral;
pub use models::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing service cannot be reached; worth a 503 and a retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Other(String),
    #[error("{0} already exists")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Both stores, as a server uses them.
pub struct Stores {
    pub durable: std::sync::Arc<dyn Durable>,
    pub ephemeral: std::sync::Arc<dyn Ephemeral>,
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Each change is written with its audit event, in one transaction.
    async fn insert_client(&self, client: &Client, audit: &AuditEvent) -> StoreResult<()>;
    async fn client(&self, id: &str) -> StoreResult<Option<Client>>;
    async fn clients(&self) -> StoreResult<Vec<Client>>;
    /// Returns false (and records nothing) when there was no such client.
    async fn delete_client(&self, id: &str, audit: &AuditEvent) -> StoreResult<bool>;
    /// Returns false (and records nothing) when there was no such client.
    async fn set_client_secret_hash(&self, id: &str, hash: &[u8], audit: &AuditEvent) -> StoreResult<bool>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn user(&self, sub: &str) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    async fn set_password_hash(&self, username: &str, hash: &str) -> StoreResult<bool>;
    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool>;
}

#[async_trait]
pub trait RoleStore: Send + Sync {
    /// The user's roles, sorted.
    async fn user_roles(&self, sub: &str) -> StoreResult<Vec<String>>;
    /// False when the user already had the role.
    async fn grant_role(&self, sub: &str, role: &str, now: crate::clock::UnixTime) -> StoreResult<bool>;
    /// False when the user did not have the role.
    async fn remove_role(&self, sub: &str, role: &str) -> StoreResult<bool>;
}

/// The durable record of revoked access tokens; the ephemeral deny list is its cache.
#[async_trait]
pub trait DenialStore: Send + Sync {
    /// Records a denial, or widens an existing one (a later `issued_before` or `expires_at`).
    async fn insert_denial(&self, denial: &Denial) -> StoreResult<()>;
    /// Every denial that may still cover a valid token; forgets the rest.
    async fn live_denials(&self, now: crate::clock::UnixTime) -> StoreResult<Vec<Denial>>;
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;
    /// The change counter of one algorithm's key set.
    async fn key_generation(&self, alg: SigningAlg) -> StoreResult<i64>;
    /// Compare-and-set: inserts `add` and deletes `remove` only if the algorithm's generation
    /// is still `expected`, bumping it. Returns false when another node changed the set first.
    async fn change_keys(&self, alg: SigningAlg, expected: i64, add: Option<&StoredSigningKey>, remove: &[String]) -> StoreResult<bool>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes the user has granted the client (empty: none).
    async fn consented_scopes(&self, sub: &str, client_id: &str) -> StoreResult<Vec<String>>;
    /// Remembers a grant, replacing an earlier one.
    async fn save_consent(&self, sub: &str, client_id: &str, scopes: &[String], now: UnixTime) -> StoreResult<()>;
    async fn revoke_consent(&self, sub: &str, client_id: &str) -> StoreResult<()>;
}

/// Every write here that touches several rows is one transaction: a refresh family never holds
/// a used token without its successor, nor a successor without its access token's jti.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Starts a family with its first token and the access token issued beside it.
    async fn start_refresh_family(&self, family: &RefreshFamily, first: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()>;
    /// By hash; `revoked_at` is set when the token or its family is revoked.
    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshToken>>;
    /// Marks the presented token used and adds its successor and the new access token's jti, all
    /// or nothing. Marking an unused, unrevoked token is the rotation's lock: true for exactly one
    /// caller; false (nothing written) when the token was already used or is revoked.
    async fn rotate_refresh_token(&self, presented_hash: &[u8], now: UnixTime, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<bool>;
    /// Adds a successor and the new access token's jti, together, leaving the presented token as
    /// it is: the answer to a retry within the reuse grace.
    async fn add_refresh_successor(&self, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()>;
    /// Revokes the family and its tokens; returns the (jti, exp) of its unexpired access tokens.
    async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> StoreResult<Vec<(String, UnixTime)>>;
}

/// The administrative writes take the audit event that records them: it commits with the change
/// or not at all.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditEvent) -> StoreResult<()>;
    async fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ApiKey>>;
    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;
    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Revokes the key and records `tokens` (the denial of the access tokens bought with it) and
    /// `audit` in the same transaction. Returns false (nothing written) when there was no such live key.
    async fn revoke_api_key(&self, id: &str, now: UnixTime, tokens: &Denial, audit: &AuditEvent) -> StoreResult<bool>;
    /// Inserts `successor` and marks `id` as replaced by it, valid until `grace_until`, all or
    /// nothing; false (nothing written) when `id` is not live or already replaced.
    async fn rotate_api_key(&self, id: &str, successor: &ApiKey, grace_until: UnixTime, audit: &AuditEvent) -> StoreResult<bool>;
    async fn touch_api_key(&self, id: &str, at: UnixTime, from: Option<&str>) -> StoreResult<()>;
}

/// A user's second factors and recovery codes. The writes that take an audit event commit with
/// it or not at all; the checks that make a code single-use are conditional updates, true for
/// exactly one of any number of concurrent callers.
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Adds a factor with its audit event, and drops the user's earlier unconfirmed factors of
    /// the same kind (abandoned enrolments), in one transaction.
    async fn insert_factor(&self, factor: &Factor, audit: &AuditEvent) -> StoreResult<()>;
    async fn factor(&self, id: &str) -> StoreResult<Option<Factor>>;
    /// The user's factors, oldest first.
    async fn factors(&self, sub: &str) -> StoreResult<Vec<Factor>>;
    /// Confirms an unconfirmed factor, spending `step` (the time step of the code that confirmed
    /// it), with its audit event. False (nothing written) when there is no such unconfirmed factor.
    async fn confirm_factor(&self, id: &str, step: i64, now: UnixTime, audit: &AuditEvent) -> StoreResult<bool>;
    /// Accepts a code of time step `step` for a confirmed factor: `last_step` moves to `step` only
    /// if it was earlier (a compare-and-set), and `last_used_at` to `now`. False when that step or
    /// a later one was accepted already (a replay), or the factor is gone or unconfirmed.
    async fn accept_factor_step(&self, id: &str, step: i64, now: UnixTime) -> StoreResult<bool>;
    /// Removes one of the user's factors, with its audit event. False (nothing written) when the
    /// user has no such factor.
    async fn delete_factor(&self, sub: &str, id: &str, audit: &AuditEvent) -> StoreResult<bool>;
    /// Records a use of a confirmed passkey: its credential (the signature counter, the backup
    /// flags) becomes `credential` only if it still reads `expected` (a compare-and-set: of two
    /// concurrent uses, one wins). False (nothing written) otherwise.
    async fn update_passkey(&self, id: &str, expected: &str, credential: &str, now: UnixTime) -> StoreResult<bool>;
    /// Removes every factor and recovery code of the user, with its audit event, in one
    /// transaction. Returns how many factors and codes (used or not) were removed.
    async fn delete_all_factors(&self, sub: &str, audit: &AuditEvent) -> StoreResult<(u64, u64)>;
    /// Replaces every recovery code of the user (used or not) with `hashes`, with its audit event,
    /// in one transaction.
    async fn replace_recovery_codes(&self, sub: &str, hashes: &[Vec<u8>], now: UnixTime, audit: &AuditEvent) -> StoreResult<()>;
    /// Spends the user's unused code with this hash, with its audit event. True for exactly one
    /// caller; false (nothing written) when there is no such unused code.
    async fn use_recovery_code(&self, sub: &str, hash: &[u8], now: UnixTime, audit: &AuditEvent) -> StoreResult<bool>;
    /// How many of the user's recovery codes are unused.
    async fn recovery_codes_left(&self, sub: &str) -> StoreResult<i64>;
}

/// The outbox of back-channel logout deliveries. A delivery is claimed by one node at a time
/// (a conditional update), for a lease; a node that dies mid-delivery leaves it to be claimed
/// again when its lease ends.
#[async_trait]
pub trait LogoutOutboxStore: Send + Sync {
    /// Adds deliveries, all or none.
    async fn enqueue_logouts(&self, deliveries: &[LogoutDelivery]) -> StoreResult<()>;
    /// Claims up to `limit` deliveries due at `now` that no live lease holds: each gets
    /// `lease_until` and one more attempt. Returns what this caller won.
    async fn claim_logouts(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> StoreResult<Vec<LogoutDelivery>>;
    /// Records how an attempt ended and frees the lease.
    async fn settle_logout(&self, id: &str, outcome: &LogoutOutcome) -> StoreResult<()>;
    /// Deliveries of one session (tests and operators: what was sent where).
    async fn logouts_of_session(&self, sid: &str) -> StoreResult<Vec<(LogoutDelivery, Option<UnixTime>)>>;
    /// Removes settled deliveries created before `before`; returns how many.
    async fn prune_logouts(&self, before: UnixTime) -> StoreResult<u64>;
}

/// Links between local users and their identities at upstream providers, and the groups the
/// last upstream sign-in brought.
#[async_trait]
pub trait UpstreamIdentityStore: Send + Sync {
    async fn upstream_link(&self, provider_id: &str, upstream_subject: &str) -> StoreResult<Option<UpstreamLink>>;
    /// Users whose email is `email`, compared case-insensitively.
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>>;
    /// Inserts the link, with the user it names when `new_user` is given (a first sign-in that
    /// creates the account), and its audit event, in one transaction. `Conflict` (nothing
    /// written) when the identity is linked already, the user has another identity at this
    /// provider, or the new user's username is taken.
    async fn insert_upstream_link(&self, link: &UpstreamLink, new_user: Option<&User>, audit: &AuditEvent) -> StoreResult<()>;
    /// Records a sign-in through the link: its time, and the user's groups replaced by `groups`.
    async fn record_upstream_sign_in(&self, link: &UpstreamLink, groups: &[String], now: UnixTime) -> StoreResult<()>;
    /// The groups of the user's last upstream sign-in (empty: none).
    async fn user_groups(&self, sub: &str) -> StoreResult<Vec<String>>;
}

/// The registry of SSO sessions: the durable record of each (the live session is in the
/// ephemeral store) and the clients that got a code in it. A session is live only while its row
/// is not ended, so ending it here ends it everywhere at once.
#[async_trait]
pub trait SsoSessionStore: Send + Sync {
    async fn insert_sso_session(&self, session: &SsoSession) -> StoreResult<()>;
    async fn sso_session(&self, sid: &str) -> StoreResult<Option<SsoSession>>;
    /// Moves a session's `last_seen_at` to `now` and `expires_at` on; false (nothing written)
    /// when it is ended or unknown.
    async fn touch_sso_session(&self, sid: &str, now: UnixTime, expires_at: UnixTime) -> StoreResult<bool>;
    /// Records a second factor proven at `at` (the session's `amr` is now `amr`) and touches the
    /// session; false (nothing written) when it is ended or unknown.
    async fn record_sso_session_factor(&self, sid: &str, amr: &[String], at: UnixTime, expires_at: UnixTime) -> StoreResult<bool>;
    /// Records that `client_id` received a code in the session; once per client (insert if absent).
    async fn record_sso_session_client(&self, sid: &str, client_id: &str, now: UnixTime) -> StoreResult<()>;
    /// The sessions live at `now` (not ended, not expired), of one user or of everyone, newest
    /// first, each with its clients.
    async fn live_sso_sessions(&self, sub: Option<&str>, now: UnixTime) -> StoreResult<Vec<SsoSessionWithClients>>;
    /// Ends a session that is not ended yet, in one transaction: marks it ended at `now` for
    /// `reason`, revokes the refresh-token families issued in it and queues a back-channel
    /// logout delivery for each of its clients with a `backchannel_logout_uri` (both when
    /// `revoke_grants`), and appends `audit`. Of concurrent calls exactly one ends it; None (nothing written) for the
    /// others and for an unknown session.
    async fn end_sso_session(&self, sid: &str, reason: &str, revoke_grants: bool, now: UnixTime, audit: &AuditEvent) -> StoreResult<Option<EndedSsoSession>>;
    /// Deletes at most `limit` sessions that ended or expired before `before`, with their client
    /// lists; returns how many.
    async fn prune_sso_sessions(&self, before: UnixTime, limit: i64) -> StoreResult<u64>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// The newest `limit` events (optionally about one subject), oldest first.
    async fn recent_audit(&self, subject: Option<&str>, limit: i64) -> StoreResult<Vec<AuditEvent>>;
    /// At most `limit` events with an id above `after` and a time in `[since, until)`, by id:
    /// an export pages through the log with the last id it got.
    async fn audit_page(&self, since: UnixTime, until: UnixTime, after: i64, limit: i64) -> StoreResult<Vec<AuditEvent>>;
}

/// API-key usage per key per minute, written by the flush of the ephemeral counters.
#[async_trait]
pub trait ApiKeyUsageStore: Send + Sync {
    /// Stores the rows in one transaction; a row already stored for its key and minute is
    /// replaced (a flush retried after a failure writes the same totals again).
    async fn record_api_key_usage(&self, rows: &[ApiKeyUsage]) -> StoreResult<()>;
    /// The key's minutes from `since` on, oldest first.
    async fn api_key_usage(&self, key_id: &str, since: UnixTime) -> StoreResult<Vec<ApiKeyUsage>>;
}

/// Deleting what outlived its retention, a bounded batch per call so no statement holds
/// locks for long; each returns how many rows it deleted.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    async fn prune_audit(&self, before: UnixTime, limit: i64) -> StoreResult<u64>;
    /// API keys that stopped working (revoked, expired, or past their rotation grace) before
    /// `before`, with their usage rows.
    async fn prune_api_keys(&self, before: UnixTime, limit: i64) -> StoreResult<u64>;
    async fn prune_api_key_usage(&self, before: UnixTime, limit: i64) -> StoreResult<u64>;
    /// Refresh-token families that expired or were revoked before `before`, with their tokens
    /// and the record of their access tokens; returns how many families.
    async fn prune_refresh_families(&self, before: UnixTime, limit: i64) -> StoreResult<u64>;
}

#[async_trait]
pub trait Durable: ClientStore + UserStore + RoleStore + DenialStore + SigningKeyStore + ConsentStore + RefreshTokenStore + ApiKeyStore + ApiKeyUsageStore + FactorStore + UpstreamIdentityStore + SsoSessionStore + LogoutOutboxStore + AuditStore + RetentionStore + Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    /// `sqlite` or `postgres`, for the start-up log.
    fn backend(&self) -> &'static str;
}
