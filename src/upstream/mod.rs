//! Signing in through an upstream identity provider: sesame is the relying party. The protocol
//! work (discovery, PKCE, the token request, ID token validation, userinfo) is the
//! `openidconnect` and `oauth2` crates'; here are what they need from us (an HTTP client, the
//! state kept between the redirect and the callback) and what follows (claims to an account).
//!
//! redirect -> (the provider) -> callback -> claims -> accounts -> a session.

pub mod accounts;
pub mod attempt;
pub mod callback;
pub mod claims;
pub mod client_auth;
pub mod error;
pub mod http;
pub mod metadata;
pub mod oidc;
pub mod plain;
pub mod redirect;

use std::sync::Arc;

use crate::config::{Config, UpstreamConfig};
use crate::outbound::{Destinations, OutboundHttp};

pub use error::UpstreamError;

/// One configured provider, with its HTTP client and its cached discovery document.
pub struct Provider {
    pub config: UpstreamConfig,
    pub http: OutboundHttp,
    pub metadata: metadata::MetadataCache,
    /// `private_key_jwt`: the key the token requests are signed with, read at start.
    pub assertion_key: Option<client_auth::AssertionKey>,
}

/// Every configured provider, built at start (discovery happens at first use, not at start,
/// so a provider that is down does not keep sesame from starting).
#[derive(Default)]
pub struct Upstreams {
    providers: Vec<Arc<Provider>>,
}

impl Upstreams {
    pub fn build(config: &Config) -> anyhow::Result<Self> {
        let mut providers = Vec::new();
        for p in &config.upstream {
            let destinations = if p.allow_private_networks { Destinations::Anywhere } else { Destinations::from_config(&config.outbound) };
            let assertion_key = match &p.private_key_file {
                Some(path) if p.client_auth == crate::config::UpstreamClientAuth::PrivateKeyJwt => Some(
                    client_auth::AssertionKey::from_file(path).map_err(|e| anyhow::anyhow!("upstream.{}.private_key_file: {e}", p.id))?,
                ),
                _ => None,
            };
            providers.push(Arc::new(Provider {
                config: p.clone(),
                http: OutboundHttp::new(destinations)?,
                metadata: metadata::MetadataCache::default(),
                assertion_key,
            }));
        }
        Ok(Self { providers })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Provider>> {
        self.providers.iter().find(|p| p.config.id == id).cloned()
    }

    pub fn all(&self) -> &[Arc<Provider>] {
        &self.providers
    }
}

/// Where the provider sends the browser back: one URL per provider, so a response can only be
/// taken for the provider it was sent to (RFC 9700 §4.4, mix-up attacks).
pub fn callback_url(config: &Config, provider_id: &str) -> String {
    config.endpoint(&crate::paths::upstream_callback(provider_id))
}

/// The provider a sign-in goes straight to, past the login page: the one the client named
/// (`idp=<id>`); else the one whose `allowed_email_domains` hold the `login_hint` address's
/// domain (when exactly one does); else the only provider, when the password form is off.
pub fn chosen<'a>(config: &'a Config, idp_hint: Option<&str>, login_hint: Option<&str>) -> Option<&'a str> {
    if let Some(p) = idp_hint.and_then(|id| config.upstream(id)) {
        return Some(&p.id);
    }
    let domain = login_hint.and_then(|h| h.rsplit_once('@')).map(|(_, d)| d);
    if let Some(domain) = domain {
        let mut owners = config.upstream.iter().filter(|p| p.allowed_email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)));
        if let (Some(only), None) = (owners.next(), owners.next()) {
            return Some(&only.id);
        }
    }
    match config.upstream.as_slice() {
        [only] if !config.login.password_form => Some(&only.id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let provider = |id: &str, domain: &str| {
            format!("[[upstream]]\nid = \"{id}\"\ndisplay_name = \"{id}\"\nissuer = \"https://{id}.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nallowed_email_domains = [\"{domain}\"]\n")
        };
        Config::from_toml(&format!("{extra}{}{}", provider("corp", "corp.example"), provider("partner", "partner.example"))).unwrap()
    }

    #[test]
    fn the_idp_hint_then_the_login_hint_domain_choose_the_provider() {
        let c = config("");
        assert_eq!(chosen(&c, Some("partner"), Some("a@corp.example")), Some("partner"));
        assert_eq!(chosen(&c, Some("nope"), None), None, "an unknown idp is ignored: the login page");
        assert_eq!(chosen(&c, None, Some("ada@CORP.example")), Some("corp"));
        assert_eq!(chosen(&c, None, Some("ada@elsewhere.example")), None);
        assert_eq!(chosen(&c, None, Some("ada")), None);
        assert_eq!(chosen(&c, None, None), None, "two providers and a password form: the login page");
    }

    #[test]
    fn the_only_provider_is_chosen_when_the_password_form_is_off() {
        let one = "[[upstream]]\nid = \"corp\"\ndisplay_name = \"Corp\"\nissuer = \"https://corp.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        assert_eq!(chosen(&Config::from_toml(one).unwrap(), None, None), None);
        assert_eq!(chosen(&Config::from_toml(&format!("[login]\npassword_form = false\n{one}")).unwrap(), None, None), Some("corp"));
        assert_eq!(chosen(&config("[login]\npassword_form = false\n"), None, None), None, "two: the person picks");
    }
}
