//! The sections of the configuration, each with its defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::alg::SigningAlg;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiKeyConfig {
    /// Longest lifetime a key may be given, per environment.
    pub max_lifetime: PerEnv<HumanDuration>,
    /// Requests per minute when a key is issued without its own limit.
    pub default_rate_limit: PerEnv<i64>,
    /// How long a node trusts its cached copy of a key's record (revocations also
    /// reach every node at once through Redis).
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Lifetime of access tokens bought with an API key (token exchange).
    #[serde(with = "humantime_serde")]
    pub exchanged_token_ttl: Duration,
    /// The `resource`s and `audience`s an API key may be exchanged for; a request naming
    /// neither gets the default audience. Empty: only the default.
    pub exchange_audiences: Vec<String>,
    /// How often each node moves the per-minute usage counters from the ephemeral store to
    /// the database (a minute is flushed once, by whichever node gets to it first).
    #[serde(with = "humantime_serde")]
    pub usage_flush_interval: Duration,
    /// How long a key that stopped working (revoked, expired, rotated out) is kept, and how
    /// long usage rows are kept; `0s` keeps them forever.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

/// The audit log's retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    /// Events older than this are deleted; `0s` keeps them forever.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often a node prunes what outlived its retention (audit events, ended API keys,
    /// API-key usage); one node per interval does it.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention: Duration::from_secs(365 * 86_400), prune_interval: Duration::from_secs(3600) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerEnv<T> {
    pub dev: T,
    pub staging: T,
    pub prod: T,
}

impl<T: Clone> PerEnv<T> {
    pub fn get(&self, env: &str) -> Option<T> {
        match env {
            "dev" => Some(self.dev.clone()),
            "staging" => Some(self.staging.clone()),
            "prod" => Some(self.prod.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HumanDuration(#[serde(with = "humantime_serde")] pub Duration);

impl Default for ApiKeyConfig {
    fn default() -> Self {
        let days = |d: u64| HumanDuration(Duration::from_secs(d * 86_400));
        Self {
            max_lifetime: PerEnv { dev: days(365), staging: days(180), prod: days(90) },
            default_rate_limit: PerEnv { dev: 120, staging: 600, prod: 1200 },
            cache_ttl: Duration::from_secs(1),
            exchanged_token_ttl: Duration::from_secs(300),
            exchange_audiences: Vec::new(),
            usage_flush_interval: Duration::from_secs(60),
            retention: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Requests sesame makes to URLs that clients registered (a `jwks_uri`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundConfig {
    /// Off: only public addresses are contacted; private, loopback, link-local, CGNAT, ULA,
    /// multicast and documentation ranges are refused, also when a name resolves to them.
    pub allow_private_networks: bool,
}

/// TLS terminated by sesame (`cert_file` and `key_file` together), and client certificates for
/// mutual TLS: from the handshake (asked for, not required), or from a header set by a trusted
/// proxy that terminates TLS (`client_cert_header`, e.g. nginx's `$ssl_client_escaped_cert`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    /// The CAs a `tls_client_auth` client's certificate must chain to.
    pub client_ca_file: Option<std::path::PathBuf>,
    /// Believed only from `trusted_proxies`.
    pub client_cert_header: Option<String>,
}

/// What `sesame serve` does on SIGTERM or SIGINT.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownConfig {
    /// How long the node keeps serving, with `/readyz` answering 503, before it stops accepting:
    /// long enough for load balancers to see it go and send traffic elsewhere. Zero: stop at once.
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// How long requests still in flight when it stops accepting may take; then it exits anyway.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    /// A load balancer checking every 5 s that gives up after two failures, or Kubernetes taking
    /// a pod out of its endpoints, stops sending within 10 s; drain and grace together stay below
    /// the 30 s a supervisor (Kubernetes by default) waits before it kills.
    fn default() -> Self {
        Self { drain: Duration::from_secs(10), grace: Duration::from_secs(15) }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IntrospectionConfig {
    /// Client ids allowed to introspect; empty means any confidential client.
    pub allowed_clients: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// A browser session ends after this long without use...
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// ...and after this long in any case.
    #[serde(with = "humantime_serde")]
    pub absolute_timeout: Duration,
    pub cookie_name: String,
    /// How long a user has to finish signing in once an app sent them here.
    #[serde(with = "humantime_serde")]
    pub pending_request_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginConfig {
    /// Failed sign-ins allowed per account within `failure_window` before it is throttled.
    pub max_failures_per_account: i64,
    /// Failed sign-ins allowed per client address within `failure_window`.
    pub max_failures_per_ip: i64,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// Off: the login page shows only the upstream providers (and refuses passwords); with
    /// exactly one provider, the browser goes straight to it.
    pub password_form: bool,
}

/// Second factors at sign-in. Users who set one up are always asked for it; this makes it
/// everyone's duty (those without one set up an authenticator app before they get in).
/// DPoP (RFC 9449) proofs at the token endpoint and at sesame's own resources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DpopConfig {
    /// Server-provided nonces (RFC 9449 §8) at the token and PAR endpoints: a proof without a
    /// current nonce is answered `use_dpop_nonce` with the nonce to use.
    pub nonce: bool,
    /// How long one nonce is handed out; it is accepted for one more such period.
    #[serde(with = "humantime_serde")]
    pub nonce_lifetime: Duration,
    /// How old (by `iat`) a proof may be; its `jti` is remembered that long, on every node.
    #[serde(with = "humantime_serde")]
    pub proof_max_age: Duration,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self { nonce: false, nonce_lifetime: Duration::from_secs(300), proof_max_age: Duration::from_secs(60) }
    }
}

/// Pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ParConfig {
    /// Every authorization request must be pushed first (per client: `--require-par`).
    pub required: bool,
    /// Lifetime of a `request_uri`.
    #[serde(with = "humantime_serde")]
    pub request_uri_ttl: Duration,
}

impl Default for ParConfig {
    fn default() -> Self {
        Self { required: false, request_uri_ttl: Duration::from_secs(60) }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MfaConfig {
    pub required: bool,
}

/// The device authorization grant (RFC 8628): how long a user has to enter the code, how often
/// the device may poll, and how many wrong codes an address may type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceConfig {
    /// The life of a device code and its user code (`expires_in`).
    #[serde(with = "humantime_serde")]
    pub expires_in: Duration,
    /// The least time between two polls of the token endpoint (`interval`); each `slow_down`
    /// adds five seconds for that device code (RFC 8628 §3.5).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Wrong user codes allowed per client address within `failure_window`.
    pub max_failures_per_ip: i64,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self { expires_in: Duration::from_secs(600), interval: Duration::from_secs(5), max_failures_per_ip: 10, failure_window: Duration::from_secs(15 * 60) }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
            cookie_name: "sesame_session".into(),
            pending_request_ttl: Duration::from_secs(15 * 60),
            code_ttl: Duration::from_secs(60),
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self { max_failures_per_account: 5, max_failures_per_ip: 50, failure_window: Duration::from_secs(15 * 60), password_form: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenConfig {
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub id_token_ttl: Duration,
    /// `RS256`, `ES256` or `EdDSA`; a client may override it.
    pub access_token_alg: SigningAlg,
    pub id_token_alg: SigningAlg,
    /// `aud` of access tokens when no `resource` is requested (default: the issuer).
    pub default_audience: Option<String>,
    /// A refresh token dies after this long unused...
    #[serde(with = "humantime_serde")]
    pub refresh_idle_ttl: Duration,
    /// ...and its whole family this long after the login that started it.
    #[serde(with = "humantime_serde")]
    pub refresh_absolute_ttl: Duration,
    /// A client retrying a refresh this soon after rotating the same token gets a new pair
    /// instead of tripping reuse detection.
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyConfig {
    /// How long a signing key signs before its successor takes over.
    #[serde(with = "humantime_serde")]
    pub rotation_interval: Duration,
    /// How long a new key is published in the JWKS before it signs.
    #[serde(with = "humantime_serde")]
    pub prepublish: Duration,
    /// How often each node checks the schedule and reloads the key set.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// `Cache-Control: max-age` of the JWKS; must be shorter than `prepublish`.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordConfig {
    /// Argon2id memory cost in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Password hashes computed at once; the rest wait, so a login flood cannot starve other work.
    pub max_concurrent: usize,
    /// Password checks allowed to wait; beyond them a sign-in is told to try again (503).
    pub max_queue: usize,
}


impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            id_token_ttl: Duration::from_secs(15 * 60),
            access_token_alg: SigningAlg::RS256,
            id_token_alg: SigningAlg::RS256,
            default_audience: None,
            refresh_idle_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_absolute_ttl: Duration::from_secs(90 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(5),
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            rotation_interval: Duration::from_secs(30 * 24 * 3600),
            prepublish: Duration::from_secs(2 * 24 * 3600),
            check_interval: Duration::from_secs(1),
            jwks_max_age: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1, max_concurrent: 2, max_queue: 64 }
    }
}
