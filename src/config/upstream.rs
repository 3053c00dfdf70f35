//! `[[upstream]]`: identity providers people may sign in through (OpenID Connect, or plain
//! OAuth 2.0 with a userinfo URL), each with its claim mapping and account rules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// In URLs (`/login/upstream/<id>/callback`) and the `idp` hint: letters, digits, `-`, `_`.
    pub id: String,
    /// Shown as "Continue with <display_name>".
    pub display_name: String,
    /// OpenID Connect: the issuer, whose discovery document names every endpoint.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Plain OAuth 2.0 (no `issuer`): the three endpoints, all required.
    #[serde(default)]
    pub authorization_url: Option<String>,
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub userinfo_url: Option<String>,
    pub client_id: String,
    /// With `client_secret_basic` / `client_secret_post`.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_auth: UpstreamClientAuth,
    /// With `private_key_jwt`: a PKCS#8 PEM (RSA for RS256, P-256 for ES256).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// Default: `openid profile email` for OpenID Connect, none for plain OAuth 2.0.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Empty: any domain. Otherwise the (verified) email's domain must be one of these.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    #[serde(default)]
    pub provisioning: Provisioning,
    /// A first sign-in whose verified email matches exactly one local user is linked to that
    /// user. Off: such a sign-in is refused (or, with `jit`, makes a new user when the username
    /// is free).
    #[serde(default)]
    pub link_by_verified_email: bool,
    /// Treat every email this provider sends as verified (providers whose addresses are set by
    /// administrators and that send no `email_verified`, such as Entra ID).
    #[serde(default)]
    pub emails_are_verified: bool,
    /// The provider's own second factor counts: an upstream `amr` holding `mfa`, or an `acr` in
    /// `mfa_acr_values`, satisfies sesame's second-factor rules. Off: they apply as for a password.
    #[serde(default)]
    pub trust_upstream_mfa: bool,
    #[serde(default)]
    pub mfa_acr_values: Vec<String>,
    /// Upstream group -> sesame role. The roles named here are managed by this provider for
    /// the people who sign in through it: granted when they are in the group, removed when not.
    #[serde(default)]
    pub groups_to_roles: BTreeMap<String, String>,
    /// Reach this provider on private and loopback addresses (an in-house identity provider),
    /// whatever `outbound.allow_private_networks` says for other fetches.
    #[serde(default)]
    pub allow_private_networks: bool,
}

/// How sesame authenticates to the provider's token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provisioning {
    /// A user is created at the first sign-in.
    #[default]
    Jit,
    /// Only people who already have a sesame account (linked before, or by verified email).
    Existing,
}

/// Which upstream claim holds what. Dotted names are not paths: a claim named
/// `https://example.com/groups` is found as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// The durable link; never the email. Plain OAuth 2.0 providers often call it `id`.
    pub subject: String,
    pub username: String,
    pub email: String,
    pub email_verified: String,
    pub name: String,
    pub groups: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
            name: "name".into(),
            groups: "groups".into(),
        }
    }
}

/// A secret from the configuration: kept out of `Debug` output (and so out of logs).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl UpstreamConfig {
    pub fn is_oidc(&self) -> bool {
        self.issuer.is_some()
    }

    pub fn scopes(&self) -> Vec<String> {
        match &self.scopes {
            Some(list) => list.clone(),
            None if self.is_oidc() => vec!["openid".into(), "profile".into(), "email".into()],
            None => Vec::new(),
        }
    }

    /// Every problem with this provider's settings, each as `upstream.<id>.<key>: why`.
    pub fn problems(&self, known_roles: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let mut bad = |key: &str, why: &str| out.push(format!("upstream.{}.{key}: {why}", self.id));
        if self.id.is_empty() || self.id.len() > 64 || !self.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            bad("id", "1 to 64 letters, digits, - or _");
        }
        if self.display_name.trim().is_empty() {
            bad("display_name", "must not be empty");
        }
        if self.client_id.is_empty() {
            bad("client_id", "must not be empty");
        }
        let plain = [&self.authorization_url, &self.token_url, &self.userinfo_url];
        match &self.issuer {
            Some(issuer) => {
                if let Err(e) = check_url(issuer) {
                    bad("issuer", &e);
                }
                if plain.iter().any(|u| u.is_some()) {
                    bad("issuer", "an OpenID Connect provider finds its endpoints by discovery: leave out authorization_url, token_url and userinfo_url");
                }
            }
            None => {
                for (key, url) in [("authorization_url", plain[0]), ("token_url", plain[1]), ("userinfo_url", plain[2])] {
                    match url {
                        None => bad(key, "required without an issuer (plain OAuth 2.0)"),
                        Some(u) => {
                            if let Err(e) = check_url(u) {
                                bad(key, &e);
                            }
                        }
                    }
                }
            }
        }
        match self.client_auth {
            UpstreamClientAuth::PrivateKeyJwt if self.private_key_file.is_none() => bad("private_key_file", "required with client_auth = \"private_key_jwt\""),
            UpstreamClientAuth::ClientSecretBasic | UpstreamClientAuth::ClientSecretPost if self.client_secret.as_ref().is_none_or(|s| s.0.is_empty()) => {
                bad("client_secret", "required (or set client_auth = \"private_key_jwt\")")
            }
            _ => {}
        }
        if self.is_oidc() && !self.scopes().iter().any(|s| s == "openid") {
            bad("scopes", "an OpenID Connect provider needs the openid scope");
        }
        for (group, role) in &self.groups_to_roles {
            if !known_roles.contains(&role.as_str()) {
                bad("groups_to_roles", &format!("group `{group}` maps to unknown role `{role}` (known: {})", known_roles.join(", ")));
            }
        }
        if self.allowed_email_domains.iter().any(|d| d.is_empty() || d.contains('@')) {
            bad("allowed_email_domains", "domains like example.com, without @");
        }
        out
    }
}

/// https, or http on a loopback host (a provider on the same machine, as in tests).
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must use https (http only on a loopback host)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> UpstreamConfig {
        toml_provider("id = \"corp\"\ndisplay_name = \"Corp\"\nissuer = \"https://login.corp.example\"\nclient_id = \"sesame\"\nclient_secret = \"s3cret\"\n")
    }

    fn toml_provider(text: &str) -> UpstreamConfig {
        figment::Figment::from(<figment::providers::Toml as figment::providers::Format>::string(text)).extract().unwrap()
    }

    #[test]
    fn a_minimal_oidc_provider_is_valid_with_the_default_scopes() {
        let p = oidc();
        assert!(p.problems(&["admin"]).is_empty(), "{:?}", p.problems(&["admin"]));
        assert_eq!(p.scopes(), ["openid", "profile", "email"]);
        assert_eq!(p.provisioning, Provisioning::Jit);
        assert!(!p.link_by_verified_email && !p.trust_upstream_mfa);
        assert!(!format!("{p:?}").contains("s3cret"), "the secret stays out of Debug output");
    }

    #[test]
    fn bad_settings_are_each_reported() {
        let mut p = oidc();
        p.id = "no spaces".into();
        p.token_url = Some("https://x.example/token".into());
        p.client_secret = None;
        p.scopes = Some(vec!["profile".into()]);
        p.groups_to_roles.insert("ops".into(), "root".into());
        p.issuer = Some("http://login.corp.example".into());
        let problems = p.problems(&["admin"]);
        for key in ["id", "issuer: must use https", "leave out", "client_secret", "scopes", "unknown role `root`"] {
            assert!(problems.iter().any(|m| m.contains(key)), "{key}: {problems:?}");
        }
    }

    #[test]
    fn plain_oauth_needs_its_three_endpoints() {
        let p = toml_provider("id = \"gh\"\ndisplay_name = \"GitHub\"\nauthorization_url = \"https://github.com/login/oauth/authorize\"\nclient_id = \"c\"\nclient_secret = \"s\"\n");
        let problems = p.problems(&["admin"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("token_url") && problems[1].contains("userinfo_url"));
        assert!(p.scopes().is_empty());
    }

    #[test]
    fn private_key_jwt_needs_a_key_not_a_secret() {
        let mut p = oidc();
        p.client_secret = None;
        p.client_auth = UpstreamClientAuth::PrivateKeyJwt;
        assert!(p.problems(&[]).iter().any(|m| m.contains("private_key_file")));
        p.private_key_file = Some("key.pem".into());
        assert!(p.problems(&[]).is_empty());
    }
}
