//! The provider sends the browser back: the attempt is taken (once), must be this provider's and
//! this browser's, and the code is redeemed for a validated identity.

use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::attempt::{self, Attempt};
use super::claims::{self, UpstreamIdentity};
use super::error::{error_code, UpstreamError};
use super::{oidc, plain, Provider};
use crate::clock::UnixTime;
use crate::crypto::secrets::hash_hex;
use crate::oauth::authorize::pending::BrowserCookie;
use crate::state::AppState;

/// The authorization response (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 `iss`).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
}

pub async fn complete(state: &AppState, provider: &Provider, params: &CallbackParams, browser: &BrowserCookie, now: UnixTime) -> Result<(Attempt, UpstreamIdentity), UpstreamError> {
    let Some(attempt) = attempt::take(state, params.state.as_deref().unwrap_or_default()).await? else {
        return Err(UpstreamError::Stale("unknown_state"));
    };
    if attempt.provider_id != provider.config.id {
        return Err(UpstreamError::Stale("wrong_provider"));
    }
    let same_browser = browser.0.as_deref().is_some_and(|secret| bool::from(hash_hex(secret).as_bytes().ct_eq(attempt.browser.as_bytes())));
    if !same_browser {
        state.metrics.security_event("upstream_callback_other_browser");
        return Err(UpstreamError::Stale("other_browser"));
    }
    if let Some(error) = &params.error {
        return Err(UpstreamError::Declined(error_code(error)));
    }
    let code = params.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 2048).ok_or_else(|| UpstreamError::invalid("no_code", "the response has no code"))?;
    let claims = if provider.config.is_oidc() {
        oidc::check_iss_parameter(provider, params.iss.as_deref()).await?;
        oidc::exchange(provider, &state.config, code, attempt.nonce.as_deref().unwrap_or_default(), &attempt.pkce_verifier, now).await?
    } else {
        plain::exchange(provider, &state.config, code, &attempt.pkce_verifier, now).await?
    };
    let identity = claims::map(&claims, &provider.config.claims, provider.config.emails_are_verified)?;
    Ok((attempt, identity))
}
