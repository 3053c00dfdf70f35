//! What the durable store holds.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
    /// RFC 8705 §2.1: a certificate from `tls.client_ca_file` naming the registered subject.
    TlsClientAuth,
    /// RFC 8705 §2.2: a self-signed certificate whose key is in the registered JWKS (`x5c`).
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 6] = [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::None, Self::TlsClientAuth, Self::SelfSignedTlsClientAuth];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    #[serde(rename = "client_id")]
    pub id: String,
    pub name: String,
    /// SHA-256 of the generated secret; `None` for public and `private_key_jwt` clients.
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub jwks_uri: Option<String>,
    /// A registered JWK Set, as JSON.
    pub jwks: Option<String>,
    pub first_party: bool,
    /// Overrides `tokens.access_token_alg`.
    pub access_token_alg: Option<crate::crypto::alg::SigningAlg>,
    /// Overrides `tokens.access_token_ttl`, in seconds.
    pub access_token_ttl: Option<i64>,
    pub created_at: UnixTime,
    /// Every sign-in for this client proves a second factor.
    pub require_mfa: bool,
    /// Where sesame POSTs a logout token when a session the client had tokens in ends
    /// (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in its logout tokens (sesame always sends it).
    pub backchannel_logout_session_required: bool,
    /// `tls_client_auth`: the certificate's subject DN (RFC 4514 string) ...
    pub tls_client_auth_subject_dn: Option<String>,
    /// ... or one of its DNS subject alternative names.
    pub tls_client_auth_san_dns: Option<String>,
    /// Token requests must carry a DPoP proof: every token it gets is bound to its key.
    pub require_dpop: bool,
    /// Authorization requests must be pushed first (PAR, RFC 9126).
    pub require_par: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
    pub fn allows_grant(&self, grant: crate::oauth::grant_type::GrantType) -> bool {
        self.grant_types.iter().any(|g| g == grant.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub sub: String,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub disabled: bool,
    pub created_at: UnixTime,
}

/// A signing key as stored: the private part encrypted under the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: crate::crypto::alg::SigningAlg,
    /// AES-256-GCM(nonce || ciphertext) of the PKCS#8 DER, with the kid as associated data.
    pub private_key_sealed: Vec<u8>,
    /// The public JWK, as JSON.
    pub public_jwk: String,
    pub created_at: UnixTime,
    /// When it starts to sign; published from creation.
    pub activates_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    pub id: String,
    pub client_id: String,
    pub sub: String,
    pub created_at: UnixTime,
    pub absolute_expires_at: UnixTime,
    /// The DPoP key (RFC 7638 thumbprint) a public client's family is bound to.
    pub dpop_jkt: Option<String>,
    /// The client certificate (SHA-256 thumbprint) a public client's family is bound to.
    pub x5t_s256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token; the token itself is never stored.
    pub token_hash: Vec<u8>,
    pub family_id: String,
    pub client_id: String,
    pub sub: String,
    pub scopes: Vec<String>,
    pub auth_time: Option<UnixTime>,
    pub sid: Option<String>,
    pub created_at: UnixTime,
    pub idle_expires_at: UnixTime,
    /// From the family.
    pub absolute_expires_at: UnixTime,
    /// When it was rotated.
    pub used_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
    /// From the family: the DPoP key every refresh must prove.
    pub dpop_jkt: Option<String>,
    /// From the family: the client certificate every refresh must come with.
    pub x5t_s256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub env: String,
    #[serde(skip)]
    pub key_hash: Vec<u8>,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub cidrs: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub metadata: serde_json::Value,
    pub last_used_at: Option<UnixTime>,
    pub last_used_from: Option<String>,
    pub revoked_at: Option<UnixTime>,
    pub grace_until: Option<UnixTime>,
    pub replaced_by: Option<String>,
}

/// One key's use in one minute (`minute`: the unix time it started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyUsage {
    pub key_id: String,
    pub minute: UnixTime,
    /// Checks that passed the key's own rules, the rate-limited ones included.
    pub requests: i64,
    /// Of `requests`, refused for the rate limit.
    pub rate_limited: i64,
    /// Refused by the key's rules: revoked, expired, rotated out, address not allowed.
    pub denied: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixTime,
    /// `api_key.refused`, `api_key.suspicious`, `api_key.revoke`, ...
    pub kind: String,
    /// What the event is about: an API key id, a client id.
    pub subject: String,
    pub caller: Option<String>,
    /// `ok` or `denied`.
    pub result: String,
    pub reason: Option<String>,
    pub details: serde_json::Value,
}

/// What a revocation of access tokens covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// One token, by its `jti`.
    Token,
    /// Every token a client (or an API key) was issued up to `issued_before`.
    Client,
}

impl DenialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Token, Self::Client].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub kind: DenialKind,
    /// A `jti`, or a client id.
    pub subject: String,
    pub issued_before: UnixTime,
    /// After this no token the denial covers can still be valid.
    pub expires_at: UnixTime,
}

/// What kind of second factor a user holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// An authenticator app: RFC 6238 time-based one-time codes.
    Totp,
    /// A WebAuthn credential.
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Totp, Self::Passkey].into_iter().find(|k| k.as_str() == s)
    }
}

/// A user's second factor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    pub id: String,
    pub sub: String,
    pub kind: FactorKind,
    /// The user's label for it ("Phone").
    pub name: String,
    /// TOTP: the secret sealed under the key-encryption key, with `totp:<id>` as associated data.
    pub secret_sealed: Option<Vec<u8>>,
    /// TOTP: the last time step whose code was accepted (0: none yet).
    pub last_step: i64,
    /// Passkeys: the credential, as JSON.
    pub credential: Option<String>,
    /// Set when the enrolment was confirmed with a first code.
    pub confirmed_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// A logout token still to deliver to a client's `backchannel_logout_uri` (or settled: kept a
/// while for the record). The token itself is signed at each attempt, fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub sub: String,
    pub sid: String,
    pub created_at: UnixTime,
    /// Attempts started so far (a claim counts as one).
    pub attempts: i64,
    pub next_attempt_at: UnixTime,
}

/// How an attempt at a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    Delivered { at: UnixTime },
    /// Failed; try again at `next_attempt_at`.
    Retry { next_attempt_at: UnixTime, error: String },
    /// Failed for the last time.
    GaveUp { at: UnixTime, error: String },
}

/// A local user's identity at an upstream provider: `(provider_id, upstream_subject)` is the
/// durable link to `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLink {
    pub provider_id: String,
    pub upstream_subject: String,
    pub sub: String,
    pub created_at: UnixTime,
    pub last_sign_in_at: UnixTime,
}

/// The durable record of an SSO session (the live one is in the ephemeral store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SsoSession {
    /// Public session id: the `sid` claim; not the cookie secret.
    pub sid: String,
    pub sub: String,
    /// SHA-256 (hex) of the cookie secret: the live session's name in the ephemeral store.
    #[serde(skip)]
    pub key_hash: String,
    pub created_at: UnixTime,
    pub auth_time: UnixTime,
    pub factor_proven_at: Option<UnixTime>,
    pub amr: Vec<String>,
    pub last_seen_at: UnixTime,
    /// When it ends unless used again (idle or absolute limit); once ended, when it was.
    pub expires_at: UnixTime,
    pub absolute_expires_at: UnixTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub ended_at: Option<UnixTime>,
    pub end_reason: Option<String>,
}

impl SsoSession {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }
}

/// A live session and the clients that received a code in it, first one first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SsoSessionWithClients {
    #[serde(flatten)]
    pub session: SsoSession,
    pub clients: Vec<String>,
}

/// What ending a session changed, in the transaction that ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSsoSession {
    /// The record as it was just before it was ended.
    pub session: SsoSession,
    /// Every client that received a code in the session, first one first.
    pub clients: Vec<String>,
    /// The refresh-token families issued in it that this end revoked.
    pub revoked_families: Vec<String>,
    /// (jti, exp) of the unexpired access tokens of those families, to deny.
    pub access_tokens: Vec<(String, UnixTime)>,
    /// How many back-channel logout deliveries this end queued.
    pub logouts_queued: u64,
}
