//! Leaving for the provider: its authorization URL, and the attempt the callback will take.

use super::attempt::{self, Attempt};
use super::error::UpstreamError;
use super::{oidc, plain, Provider};
use crate::clock::UnixTime;
use crate::state::AppState;

/// The URL to send the browser to. `browser` is the hash of the browser binding the pending
/// request `request_id` carries; `login_hint` is passed on.
pub async fn depart(state: &AppState, provider: &Provider, request_id: &str, browser: &str, login_hint: Option<&str>, now: UnixTime) -> Result<String, UpstreamError> {
    let departure = if provider.config.is_oidc() {
        oidc::depart(provider, &state.config, login_hint).await?
    } else {
        plain::depart(provider, &state.config, login_hint)?
    };
    let record = Attempt {
        provider_id: provider.config.id.clone(),
        request_id: request_id.to_string(),
        browser: browser.to_string(),
        nonce: departure.nonce,
        pkce_verifier: departure.pkce_verifier,
        created_at: now,
    };
    attempt::save(state, &departure.state, &record).await?;
    Ok(departure.url)
}
