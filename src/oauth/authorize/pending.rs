//! A validated authorization request waiting for the user (login, consent), kept in the
//! ephemeral store under a random id that travels through the pages. Only the id travels:
//! what the client asked is read back from the store, never from the browser again.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use subtle::ConstantTimeEq;

use serde::{Deserialize, Serialize};

use super::checks::{Prompt, ResponseMode};
use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_hex, random_token};
use crate::error::AppError;
use crate::session::{cookie_header, cookie_value};
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it).
    pub redirect_uri_given: bool,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub response_mode: ResponseMode,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub created_at: UnixTime,
    /// Guards the login and consent forms of this request.
    pub csrf: String,
    /// Set when the user signed in during this request (so `prompt=login` does not loop).
    pub logged_in_at: Option<UnixTime>,
    /// Who allowed this request on the consent page: that user's consent, no one else's.
    #[serde(default)]
    pub consented_by: Option<String>,
    /// SHA-256 of the browser binding this request started in (`BrowserCookie`): every later
    /// step must come from the same browser, so a link to it is useless to anyone else.
    #[serde(default)]
    pub browser: String,
    /// `acr_values` as the client sent them.
    #[serde(default)]
    pub acr_values: Option<String>,
    /// Set when the user proved a second factor during this request (so `max_age` does not loop).
    #[serde(default)]
    pub factor_proven_at: Option<UnixTime>,
    /// `idp`: the upstream provider the client wants the user to sign in through.
    #[serde(default)]
    pub idp_hint: Option<String>,
    /// RFC 9449 §10: the DPoP key (thumbprint) the code will be bound to.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// Set when the request approves a device (RFC 8628) instead of sending a code to a
    /// redirect URI: the flow's last step records the user's answer for the device to collect.
    #[serde(default)]
    pub device: Option<PendingDevice>,
}

/// The device authorization a pending request answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingDevice {
    /// SHA-256 of the device code: the key of its records.
    pub code_hash: String,
    /// The user code as displayed, shown again on the consent page to compare with the device.
    pub user_code: String,
}

/// The cookie that binds pending requests to the browser that started them.
pub const BROWSER_COOKIE: &str = "sesame_browser";

/// The browser binding the request carried, if any.
#[derive(Debug, Clone, Default)]
pub struct BrowserCookie(pub Option<String>);

impl FromRequestParts<AppState> for BrowserCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(cookie_value(&parts.headers, &state.config.cookie_name(BROWSER_COOKIE)).map(str::to_string)))
    }
}

impl PendingAuthorization {
    /// Whether this browser started the request (constant-time on the binding's hash).
    pub fn started_in(&self, browser: &BrowserCookie) -> bool {
        let Some(secret) = &browser.0 else { return false };
        !self.browser.is_empty() && bool::from(hash_hex(secret).as_bytes().ct_eq(self.browser.as_bytes()))
    }

    /// Binds the request to this browser; returns the `Set-Cookie` when the browser had none.
    pub fn bind_to(&mut self, state: &AppState, browser: &BrowserCookie) -> Option<HeaderValue> {
        let (secret, fresh) = match &browser.0 {
            Some(s) => (s.clone(), false),
            None => (generate_secret(), true),
        };
        self.browser = hash_hex(&secret);
        fresh.then(|| cookie_header(state, BROWSER_COOKIE, &secret, None))
    }
}

fn key(id: &str) -> String {
    format!("authz:{}", hash_hex(id))
}

pub fn new_id() -> String {
    random_token(24)
}

fn ttl(state: &AppState) -> Duration {
    state.config.session.pending_request_ttl
}

pub async fn save(state: &AppState, id: &str, pending: &PendingAuthorization) -> Result<(), AppError> {
    let bytes = serde_json::to_vec(pending).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&key(id), &bytes, ttl(state)).await?;
    Ok(())
}

pub async fn load(state: &AppState, id: &str) -> Result<Option<PendingAuthorization>, AppError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    Ok(state.ephemeral.get(&key(id)).await?.and_then(|b| serde_json::from_slice(&b).ok()))
}

pub async fn remove(state: &AppState, id: &str) -> Result<(), AppError> {
    state.ephemeral.delete(&key(id)).await?;
    Ok(())
}
