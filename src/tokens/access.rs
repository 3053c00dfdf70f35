//! JWT access tokens per RFC 9068, and the deny list that revokes them before they expire.

use crate::config::Config;
use crate::crypto::keyring::KeyRing;
use crate::tokens::deny_list::{DenyList, Presented};
use crate::tokens::grant::Grant;
use crate::crypto::alg::SigningAlg;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::jwt;
use crate::crypto::secrets::random_token;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::Client;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    /// One audience or several (RFC 7519 allows both forms).
    pub aud: Audience,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub jti: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// With the `groups` scope: the groups of the user's last upstream sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// RFC 9449 §6.1 / RFC 8705 §3.1: the token is bound to a DPoP key or a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 confirmation: the key a sender-constrained token is bound to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The RFC 7638 thumbprint of the DPoP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The base64url SHA-256 of the client certificate (DER).
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl AccessTokenClaims {
    /// The thumbprint of the DPoP key the token is bound to, if it is.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// The thumbprint of the client certificate the token is bound to, if it is.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 { Audience::One(list.remove(0)) } else { Audience::Many(list) }
    }
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(list) => list.iter().any(|a| a == aud),
        }
    }
}

/// Scopes that sesame's own APIs serve: a token carrying one is also for sesame.
pub const SESAME_SCOPES: [&str; 2] = ["openid", crate::oauth::scope::ADMIN_SCOPE];

/// The audience of a token that named no resource: the configured default, plus sesame itself
/// when a scope is for sesame's own APIs (userinfo, the admin API), which accept only tokens
/// whose `aud` names the issuer (RFC 9068 §4). A token asked for a resource is for it alone.
fn default_audience(config: &Config, scopes: &[String]) -> Vec<String> {
    let mut audience = vec![config.default_audience().to_string()];
    if scopes.iter().any(|s| SESAME_SCOPES.contains(&s.as_str())) && !audience.iter().any(|a| a == config.issuer()) {
        audience.push(config.issuer().to_string());
    }
    audience
}

pub struct IssuedAccessToken {
    pub token: String,
    pub jti: String,
    pub expires_in: i64,
    pub exp: UnixTime,
}

/// What signing a token needs, and nothing more: the configuration (issuer, lifetimes,
/// algorithms) and the signing keys.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    pub config: &'a Config,
    pub keys: &'a KeyRing,
}

impl<'a> Issuer<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self { config: &state.config, keys: &state.keys }
    }
}

/// What an access token is about.
pub struct AccessTokenRequest<'a> {
    pub client_id: &'a str,
    pub alg: SigningAlg,
    /// Lifetime in seconds.
    pub ttl: i64,
    /// The user, or the client itself for client_credentials.
    pub sub: &'a str,
    pub scopes: &'a [String],
    /// Empty: the configured default audience.
    pub audience: Vec<String>,
    pub auth_time: Option<UnixTime>,
    pub sid: Option<String>,
    pub groups: Option<Vec<String>>,
    /// The DPoP key the token is bound to (its thumbprint), when the request carried a proof.
    pub dpop_jkt: Option<String>,
    /// The client certificate the token is bound to (its thumbprint), when the client
    /// authenticated with one (RFC 8705 §3).
    pub certificate_thumbprint: Option<String>,
}

impl<'a> AccessTokenRequest<'a> {
    /// A token for what the user granted `client` at sign-in.
    pub fn for_grant(config: &'a Config, client: &'a Client, grant: &'a Grant) -> Self {
        Self { auth_time: Some(grant.auth_time), sid: Some(grant.sid.clone()), ..Self::for_client(config, client, &grant.sub, &grant.scopes) }
    }

    /// A token for `client` with its (or the server's) algorithm and lifetime.
    pub fn for_client(config: &'a Config, client: &'a Client, sub: &'a str, scopes: &'a [String]) -> Self {
        let tokens = &config.tokens;
        Self {
            client_id: &client.id,
            alg: client.access_token_alg.unwrap_or(tokens.access_token_alg),
            ttl: client.access_token_ttl.unwrap_or(tokens.access_token_ttl.as_secs() as i64),
            sub,
            scopes,
            audience: vec![],
            auth_time: None,
            sid: None,
            groups: None,
            dpop_jkt: None,
            certificate_thumbprint: None,
        }
    }
}

pub fn issue(issuer: Issuer<'_>, req: AccessTokenRequest<'_>, now: UnixTime) -> Result<IssuedAccessToken, AppError> {
    let config = issuer.config;
    let (alg, ttl) = (req.alg, req.ttl);
    let audience = if req.audience.is_empty() { default_audience(config, req.scopes) } else { req.audience };
    let claims = AccessTokenClaims {
        iss: config.issuer().to_string(),
        sub: req.sub.to_string(),
        aud: Audience::from_list(audience),
        client_id: req.client_id.to_string(),
        scope: req.scopes.join(" "),
        jti: random_token(16),
        iat: now,
        exp: now + ttl,
        auth_time: req.auth_time,
        sid: req.sid,
        groups: req.groups,
        cnf: (req.dpop_jkt.is_some() || req.certificate_thumbprint.is_some()).then(|| Confirmation { jkt: req.dpop_jkt, x5t_s256: req.certificate_thumbprint }),
    };
    let key = issuer.keys.signer(alg).map_err(|e| AppError::Internal(e.to_string()))?;
    let token = jwt::sign(&key, "at+jwt", &claims).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(IssuedAccessToken { token, jti: claims.jti, expires_in: ttl, exp: claims.exp })
}

/// Revokes an access token by its `jti` until it would have expired anyway.
pub async fn deny(state: &AppState, jti: &str, exp: UnixTime) -> Result<(), AppError> {
    deny_list(state).deny_token(jti, exp, state.now()).await?;
    Ok(())
}

/// Whether the token was revoked: by its `jti`, or with every token of its client or API key.
pub async fn is_denied(state: &AppState, claims: &AccessTokenClaims) -> Result<bool, AppError> {
    let presented = Presented { jti: &claims.jti, client_id: &claims.client_id, iat: claims.iat };
    Ok(deny_list(state).is_denied(&presented, state.now()).await?)
}

fn deny_list(state: &AppState) -> DenyList<'_> {
    DenyList { durable: state.durable.as_ref(), ephemeral: state.ephemeral.as_ref() }
}
