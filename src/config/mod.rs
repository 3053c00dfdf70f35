//! One typed configuration: defaults < `sesame.toml` < `SESAME_*` environment, validated at start.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod redis_url;
mod sections;
mod trusted_proxies;
mod upstream;

pub use self::redis_url::RedisTarget;
pub use self::sections::*;
pub use self::trusted_proxies::TrustedProxies;
pub use self::upstream::{ClaimMapping, Provisioning, Secret, UpstreamClientAuth, UpstreamConfig};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The issuer identifier: an https URL, or http on a loopback host.
    pub issuer: String,
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// Unset: the in-process ephemeral store (single node only). A Redis Cluster is
    /// `redis+cluster://host:port,host:port` or, in TOML, a list of its seeds' `redis://` URLs.
    #[serde(deserialize_with = "redis_url::one_or_list")]
    pub redis_url: Option<String>,
    /// Where the embedded default keeps its key-encryption key.
    pub keys_dir: PathBuf,
    /// Base64 of a 32-byte key-encryption key; overrides the file in `keys_dir`.
    /// Every node of a cluster needs the same one.
    pub kek: Option<String>,
    pub database_max_connections: u32,
    /// The longest a request waits on PostgreSQL or Redis. A store that does not answer within
    /// it is taken as down: requests that need it get 503 at once until a background probe
    /// finds it back (every 200 ms).
    #[serde(with = "humantime_serde")]
    pub store_timeout: Duration,
    /// Memory ceiling of the in-process store (no `redis_url`), in MiB; writes beyond it get 503.
    pub memory_store_max_mib: usize,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub password: PasswordConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub mfa: MfaConfig,
    pub dpop: DpopConfig,
    pub par: ParConfig,
    /// The device authorization grant (RFC 8628).
    pub device: DeviceConfig,
    pub introspection: IntrospectionConfig,
    pub api_keys: ApiKeyConfig,
    pub audit: AuditConfig,
    pub outbound: OutboundConfig,
    pub tls: TlsConfig,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed when finding a caller's address.
    pub trusted_proxies: TrustedProxies,
    pub shutdown: ShutdownConfig,
    /// Identity providers people may sign in through (`[[upstream]]` tables).
    pub upstream: Vec<UpstreamConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://sesame.db".into(),
            redis_url: None,
            keys_dir: PathBuf::from("keys"),
            kek: None,
            database_max_connections: 16,
            store_timeout: Duration::from_millis(750),
            memory_store_max_mib: 256,
            tokens: TokenConfig::default(),
            keys: KeyConfig::default(),
            password: PasswordConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            mfa: MfaConfig::default(),
            dpop: DpopConfig::default(),
            par: ParConfig::default(),
            device: DeviceConfig::default(),
            introspection: IntrospectionConfig::default(),
            api_keys: ApiKeyConfig::default(),
            audit: AuditConfig::default(),
            outbound: OutboundConfig::default(),
            tls: TlsConfig::default(),
            trusted_proxies: TrustedProxies::default(),
            shutdown: ShutdownConfig::default(),
            upstream: Vec::new(),
        }
    }
}

/// Keys read from `SESAME_*` that are not settings.
const NOT_SETTINGS: [&str; 4] = ["config", "test_database_url", "test_redis_url", "log_format"];

impl Config {
    /// Loads defaults, then the TOML file (the given one, or `./sesame.toml` if present),
    /// then `SESAME_*` variables; then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => {
                return Err(ConfigError(vec![format!("config file {} does not exist", p.display())]))
            }
            Some(p) => figment = figment.merge(Toml::file(p)),
            None if Path::new("sesame.toml").exists() => figment = figment.merge(Toml::file("sesame.toml")),
            None => {}
        }
        figment = figment.merge(Env::prefixed("SESAME_").split("__").ignore(&NOT_SETTINGS));
        Self::extract(figment)
    }

    /// Defaults, then the settings in `toml` (no file, no environment); then validates.
    pub fn from_toml(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value and reports every problem, one message each.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if let Err(e) = validate_issuer(&self.issuer) {
            errors.push(format!("issuer: {e}"));
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            errors.push(format!("listen: `{}` is not an address like 127.0.0.1:8080", self.listen));
        }
        let db = self.database_url.as_str();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            errors.push("database_url: must start with sqlite:// or postgres://".into());
        }
        if let Some(Err(e)) = self.redis_url.as_deref().map(RedisTarget::parse) {
            errors.push(format!("redis_url: {e}"));
        }
        if let Some(k) = &self.kek {
            if crate::crypto::kek::Kek::from_base64(k).is_err() {
                errors.push("kek: must be the base64 of exactly 32 bytes".into());
            }
        }
        if self.store_timeout.is_zero() {
            errors.push("store_timeout: must be longer than zero".into());
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            errors.push("tls: cert_file and key_file go together".into());
        }
        if self.tls.client_cert_header.as_deref().is_some_and(|h| axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()) {
            errors.push("tls.client_cert_header: not a header name".into());
        }
        if self.database_max_connections == 0 {
            errors.push("database_max_connections: must be at least 1".into());
        }
        if self.memory_store_max_mib == 0 {
            errors.push("memory_store_max_mib: must be at least 1".into());
        }
        for (name, d) in [
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.id_token_ttl", self.tokens.id_token_ttl),
            ("keys.rotation_interval", self.keys.rotation_interval),
            ("keys.prepublish", self.keys.prepublish),
            ("keys.check_interval", self.keys.check_interval),
            ("session.idle_timeout", self.session.idle_timeout),
            ("session.absolute_timeout", self.session.absolute_timeout),
            ("session.pending_request_ttl", self.session.pending_request_ttl),
            ("session.code_ttl", self.session.code_ttl),
            ("login.failure_window", self.login.failure_window),
            ("device.expires_in", self.device.expires_in),
            ("device.interval", self.device.interval),
            ("device.failure_window", self.device.failure_window),
            ("tokens.refresh_idle_ttl", self.tokens.refresh_idle_ttl),
            ("tokens.refresh_absolute_ttl", self.tokens.refresh_absolute_ttl),
            ("dpop.proof_max_age", self.dpop.proof_max_age),
            ("dpop.nonce_lifetime", self.dpop.nonce_lifetime),
            ("par.request_uri_ttl", self.par.request_uri_ttl),
            ("api_keys.usage_flush_interval", self.api_keys.usage_flush_interval),
            ("audit.prune_interval", self.audit.prune_interval),
        ] {
            if d.is_zero() {
                errors.push(format!("{name}: must be longer than zero"));
            }
        }
        if self.keys.prepublish <= self.keys.jwks_max_age {
            errors.push("keys.prepublish: must be longer than keys.jwks_max_age, or verifiers with a cached JWKS would see tokens signed by a key they do not know".into());
        }
        if self.keys.prepublish >= self.keys.rotation_interval {
            errors.push("keys.prepublish: must be shorter than keys.rotation_interval".into());
        }
        if self.tokens.refresh_reuse_grace > Duration::from_secs(60) {
            errors.push("tokens.refresh_reuse_grace: at most 60s; it is a window for retries, not a second lifetime".into());
        }
        if self.dpop.proof_max_age > Duration::from_secs(600) {
            errors.push("dpop.proof_max_age: at most 10m; a proof is for one request, made just before it".into());
        }
        if self.par.request_uri_ttl > Duration::from_secs(600) {
            errors.push("par.request_uri_ttl: at most 10m (RFC 9126 §2.2: short-lived)".into());
        }
        if self.session.code_ttl > Duration::from_secs(600) {
            errors.push("session.code_ttl: authorization codes must live at most 10 minutes (RFC 6749 §4.1.2)".into());
        }
        if self.session.idle_timeout > self.session.absolute_timeout {
            errors.push("session.idle_timeout: must not exceed session.absolute_timeout".into());
        }
        if !self.session.cookie_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') || self.session.cookie_name.is_empty() {
            errors.push("session.cookie_name: letters, digits, _ and - only".into());
        }
        if self.device.max_failures_per_ip < 1 {
            errors.push("device.max_failures_per_ip: must be at least 1".into());
        }
        if self.device.interval >= self.device.expires_in {
            errors.push("device.interval: must be shorter than device.expires_in".into());
        }
        if self.login.max_failures_per_account < 1 || self.login.max_failures_per_ip < 1 {
            errors.push("login: failure limits must be at least 1".into());
        }
        for (env, limit) in [("dev", self.api_keys.default_rate_limit.dev), ("staging", self.api_keys.default_rate_limit.staging), ("prod", self.api_keys.default_rate_limit.prod)] {
            if limit < 1 {
                errors.push(format!("api_keys.default_rate_limit.{env}: must be at least 1"));
            }
        }
        if self.api_keys.exchanged_token_ttl.is_zero() {
            errors.push("api_keys.exchanged_token_ttl: must be longer than zero".into());
        }
        if self.password.memory_kib < 8 * self.password.parallelism.max(1) {
            errors.push("password.memory_kib: must be at least 8 KiB per lane".into());
        }
        if self.password.iterations == 0 || self.password.parallelism == 0 || self.password.max_concurrent == 0 {
            errors.push("password: iterations, parallelism and max_concurrent must be at least 1".into());
        }
        for (i, provider) in self.upstream.iter().enumerate() {
            errors.extend(provider.problems(&crate::oauth::authority::ROLES));
            if self.upstream[..i].iter().any(|p| p.id == provider.id) {
                errors.push(format!("upstream.{}.id: two providers have this id", provider.id));
            }
        }
        if !self.login.password_form && self.upstream.is_empty() {
            errors.push("login.password_form: can be turned off only when an [[upstream]] provider is configured".into());
        }
        if errors.is_empty() { Ok(()) } else { Err(ConfigError(errors)) }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.parse().expect("validated at load")
    }

    /// The issuer without a trailing slash; endpoint URLs are built on it.
    pub fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// A cookie's name as sent: `__Host-` prefixed when the issuer is https, so the cookie is
    /// bound to this host, its whole path, and secure transport (RFC 6265bis §4.1.3.2).
    pub fn cookie_name(&self, base: &str) -> String {
        if self.issuer_is_https() { format!("__Host-{base}") } else { base.to_string() }
    }

    pub fn issuer_is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn default_audience(&self) -> &str {
        self.tokens.default_audience.as_deref().unwrap_or_else(|| self.issuer())
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer(), path)
    }

    /// The longest a token signed now may be accepted; a retired key stays published this long.
    pub fn longest_signed_token(&self) -> Duration {
        self.tokens.access_token_ttl.max(self.tokens.id_token_ttl)
    }

    pub fn upstream(&self, id: &str) -> Option<&UpstreamConfig> {
        self.upstream.iter().find(|p| p.id == id)
    }

    /// What `redis_url` names; `None` when it is unset (or invalid, which `validate` reports).
    pub fn redis_target(&self) -> Option<RedisTarget> {
        self.redis_url.as_deref().and_then(|url| RedisTarget::parse(url).ok())
    }

    pub fn uses_embedded_stores(&self) -> bool {
        self.redis_url.is_none()
    }
}

fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("`{issuer}` is not a URL ({e})"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if host_is_loopback(&url) => Ok(()),
        "http" => Err("must use https (plain http is allowed only on a loopback host)".into()),
        other => Err(format!("scheme `{other}` is not https")),
    }
}

fn host_is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}", self.0.join("; "))
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::alg::SigningAlg;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn plain_http_issuer_only_on_loopback() {
        assert!(validate_issuer("http://127.0.0.1:8080").is_ok());
        assert!(validate_issuer("http://localhost").is_ok());
        assert!(validate_issuer("http://[::1]:9000").is_ok());
        assert!(validate_issuer("https://id.example.com").is_ok());
        assert!(validate_issuer("http://id.example.com").is_err());
        assert!(validate_issuer("https://id.example.com/?x=1").is_err());
        assert!(validate_issuer("ftp://id.example.com").is_err());
    }

    #[test]
    fn every_bad_value_is_reported() {
        let mut c = Config::default();
        c.issuer = "http://example.com".into();
        c.listen = "nope".into();
        c.database_max_connections = 0;
        let err = c.validate().unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(err.0[0].starts_with("issuer"));
        assert!(err.0[1].starts_with("listen"));
        assert!(err.0[2].starts_with("database_max_connections"));
    }

    #[test]
    fn an_unknown_algorithm_is_refused_at_load() {
        let err = Config::from_toml("[tokens]\naccess_token_alg = \"HS256\"\n").unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("HS256") && m.contains("access_token_alg")), "{err:?}");
        assert_eq!(Config::from_toml("[tokens]\nid_token_alg = \"EdDSA\"\n").unwrap().tokens.id_token_alg, SigningAlg::EdDSA);
    }

    #[test]
    fn prepublication_must_outlast_jwks_caching() {
        let mut c = Config::default();
        c.keys.prepublish = Duration::from_secs(60);
        c.keys.jwks_max_age = Duration::from_secs(300);
        assert!(c.validate().unwrap_err().to_string().contains("jwks_max_age"));
    }

    #[test]
    fn cookies_get_the_host_prefix_on_https() {
        let mut c = Config::default();
        assert_eq!(c.cookie_name("sesame_session"), "sesame_session", "plain http on loopback cannot use __Host-");
        c.issuer = "https://sso.example.com".into();
        assert_eq!(c.cookie_name("sesame_session"), "__Host-sesame_session");
    }

    #[test]
    fn outbound_requests_reach_only_public_addresses_unless_allowed() {
        assert!(!Config::default().outbound.allow_private_networks);
        assert!(Config::from_toml("[outbound]\nallow_private_networks = true\n").unwrap().outbound.allow_private_networks);
    }

    #[test]
    fn shutdown_durations_are_read_and_zero_drain_is_allowed() {
        let config = Config::from_toml("[shutdown]\ndrain = \"0s\"\ngrace = \"2m\"\n").unwrap();
        assert_eq!(config.shutdown.drain, Duration::ZERO, "zero: stop accepting at once");
        assert_eq!(config.shutdown.grace, Duration::from_secs(120));
        assert_eq!(Config::default().shutdown.drain, Duration::from_secs(10));
    }

    #[test]
    fn trusted_proxies_are_parsed_at_load() {
        let config = Config::from_toml("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"::1\"]").unwrap();
        assert!(config.trusted_proxies.contains("10.9.9.9".parse().unwrap()));
        assert!(config.trusted_proxies.contains("192.0.2.7".parse().unwrap()), "a bare address is a /32");
        assert!(!config.trusted_proxies.contains("192.0.2.8".parse().unwrap()));
        assert!(config.trusted_proxies.contains("::1".parse().unwrap()));
        let err = Config::from_toml("trusted_proxies = [\"10.0.0.0/8\", \"proxy.internal\"]").unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("`proxy.internal` is not an address or CIDR")), "{err:?}");
    }

    #[test]
    fn upstream_providers_are_read_and_checked_at_load() {
        let one = "[[upstream]]\nid = \"corp\"\ndisplay_name = \"Corp\"\nissuer = \"https://login.corp.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n[upstream.claims]\ngroups = \"roles\"\n[upstream.groups_to_roles]\nsesame-admins = \"admin\"\n";
        let config = Config::from_toml(&format!("[login]\npassword_form = false\n{one}")).unwrap();
        assert_eq!(config.upstream("corp").unwrap().claims.groups, "roles");
        assert_eq!(config.upstream("corp").unwrap().groups_to_roles["sesame-admins"], "admin");
        let err = Config::from_toml(&format!("{one}{one}")).unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("two providers")), "{err:?}");
        let err = Config::from_toml("[login]\npassword_form = false\n").unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("login.password_form")), "{err:?}");
        let err = Config::from_toml(&one.replace("[upstream.claims]\n", "[upstream.claims]\nmail = \"x\"\n")).unwrap_err();
        assert!(err.0.iter().any(|m| m.contains("mail")), "a typo in the mapping is refused: {err:?}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Durations in `sesame.toml` are read as written, whatever the unit.
            #[test]
            fn durations_are_read_as_written(n in 1u64..10_000, unit in prop::sample::select(vec![("s", 1u64), ("m", 60), ("h", 3600)])) {
                let config = Config::from_toml(&format!("[tokens]\naccess_token_ttl = \"{n}{}\"\n", unit.0));
                prop_assert_eq!(config.unwrap().tokens.access_token_ttl, Duration::from_secs(n * unit.1));
            }

            /// Any text is a valid configuration or at least one reason, never a panic.
            #[test]
            fn any_text_is_accepted_or_explained(text in "[ -~\n]{0,120}") {
                if let Err(e) = Config::from_toml(&text) {
                    prop_assert!(!e.0.is_empty());
                }
            }
        }
    }
}
