//! "Continue with <provider>": leaving for an upstream identity provider, and coming back from
//! it signed in (or with the reason why not, on the error page).

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header;
use axum::response::Response;
use serde_json::json;

use super::login::LoginQuery;
use super::pages::error_page;
use crate::audit::{self, Event};
use crate::error::{AppError, PageError};
use crate::oauth::authorize::pending::{self, BrowserCookie};
use crate::oauth::authorize::{expired_page, other_browser_page, respond};
use crate::paths;
use crate::net::{ClientIp, UserAgent};
use crate::session::{self, SessionCookie, SessionOrigin};
use crate::state::AppState;
use crate::upstream::callback::{self, CallbackParams};
use crate::upstream::{accounts, redirect, Provider, UpstreamError};

fn unknown_provider() -> Response {
    error_page("Unknown sign-in provider", "This sign-in provider is not configured here.")
}

/// Sends the browser to the provider, for the pending request `req` of this browser.
pub async fn start(State(state): State<AppState>, Path(provider_id): Path<String>, browser: BrowserCookie, Query(q): Query<LoginQuery>) -> Result<Response, PageError> {
    let Some(provider) = state.upstreams.get(&provider_id) else { return Ok(unknown_provider()) };
    let Some(p) = pending::load(&state, &q.req).await? else { return Ok(expired_page()) };
    if !p.started_in(&browser) {
        return Ok(other_browser_page(&state));
    }
    match redirect::depart(&state, &provider, &q.req, &p.browser, p.login_hint.as_deref(), state.now()).await {
        Ok(url) => Ok(respond::redirect(&url)),
        Err(e) => failed(&state, &provider, e).await,
    }
}

/// The provider's answer. Whatever it holds, the browser gets a page, never a 500: a bad answer
/// is the provider's (or an attacker's), and is refused with a reason in the audit log.
pub async fn callback(State(state): State<AppState>, Path(provider_id): Path<String>, ClientIp(ip): ClientIp, UserAgent(user_agent): UserAgent, cookie: SessionCookie, browser: BrowserCookie, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let Some(provider) = state.upstreams.get(&provider_id) else { return Ok(unknown_provider()) };
    let params = match crate::oauth::form::parse_unique(query.unwrap_or_default().as_bytes()) {
        Ok(map) => CallbackParams { code: map.get("code").cloned(), state: map.get("state").cloned(), error: map.get("error").cloned(), iss: map.get("iss").cloned() },
        Err(_) => return failed(&state, &provider, UpstreamError::invalid("malformed_response", "a parameter was given twice")).await,
    };
    let origin = SessionOrigin { ip: Some(ip), user_agent };
    match sign_in(&state, &provider, &params, &origin, &cookie, &browser).await {
        Ok(response) => Ok(response),
        Err(e) => failed(&state, &provider, e).await,
    }
}

async fn sign_in(state: &AppState, provider: &Provider, params: &CallbackParams, origin: &SessionOrigin, cookie: &SessionCookie, browser: &BrowserCookie) -> Result<Response, UpstreamError> {
    let now = state.now();
    let (attempt, identity) = callback::complete(state, provider, params, browser, now).await?;
    let Some(mut p) = pending::load(state, &attempt.request_id).await? else { return Err(UpstreamError::Stale("request_expired")) };
    if !p.started_in(browser) {
        return Err(UpstreamError::Stale("other_browser"));
    }
    let config = &provider.config;
    let (user, link, outcome) = accounts::resolve(state.durable.as_ref(), config, &identity, now).await?;
    accounts::refresh_groups_and_roles(state.durable.as_ref(), config, &link, &identity.groups, now).await?;
    let (amr, factor_proven) = accounts::session_methods(config, &identity);
    // A fresh session id at every sign-in, as after a password.
    session::replace_presented(state, cookie, &user.sub).await?;
    let methods: Vec<&str> = amr.iter().map(String::as_str).collect();
    let mut fresh = session::create(state, &user.sub, &methods, origin, now).await?;
    if factor_proven {
        session::prove_second_factor(state, &mut fresh, &[], now).await?;
        p.factor_proven_at = Some(now);
    }
    p.logged_in_at = Some(fresh.session.auth_time);
    pending::save(state, &attempt.request_id, &p).await?;
    let details = json!({"provider": config.id, "upstream_subject": identity.subject, "account": outcome.as_str(), "upstream_mfa": factor_proven});
    audit::record(state, Event { kind: "upstream.sign_in", subject: &user.sub, caller: Some(format!("upstream:{}", config.id)), ok: true, reason: None, details }).await?;
    state.metrics.upstream_sign_in(&config.id, "ok");
    tracing::info!(provider = %config.id, account = outcome.as_str(), "signed in through an upstream provider");
    let mut response = respond::redirect(&format!("{}?req={}", paths::AUTHORIZE_RESUME, attempt.request_id));
    response.headers_mut().insert(header::SET_COOKIE, session::set_cookie(state, &fresh.secret));
    Ok(response)
}

/// Audits, counts and logs the failure, and answers its page; our own store failures are
/// answered as such (503 and the like), not blamed on the provider.
async fn failed(state: &AppState, provider: &Provider, e: UpstreamError) -> Result<Response, PageError> {
    if let UpstreamError::Store(inner) = e {
        return Err(inner.into());
    }
    let id = &provider.config.id;
    tracing::warn!(provider = %id, reason = e.reason(), detail = %e.detail(), "upstream sign-in refused");
    state.metrics.upstream_sign_in(id, e.reason());
    state.metrics.security_event("upstream_sign_in_refused");
    let event = Event { kind: "upstream.sign_in", subject: &format!("upstream:{id}"), caller: None, ok: false, reason: Some(e.reason()), details: json!({"provider": id}) };
    audit::record(state, event).await.map_err(|e: AppError| PageError::from(e))?;
    Ok(e.page(&provider.config.display_name))
}
