//! The login page. Password checks run Argon2id off the async runtime (bounded); failures are
//! counted per account and per address in the ephemeral store, shared by every node.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::pages::{render, LoginPage, ProviderLink};
use crate::session::{self, SessionCookie, SessionOrigin};
use crate::crypto::password::PasswordError;
use crate::error::{AppError, PageError};
use crate::net::{ClientIp, UserAgent};
use crate::oauth::authorize::pending::BrowserCookie;
use crate::oauth::authorize::{expired_page, other_browser_page, pending, respond};
use crate::paths;
use crate::state::AppState;

const WRONG_CREDENTIALS: &str = "Wrong username or password.";
const THROTTLED: &str = "Too many failed sign-in attempts. Wait a few minutes, then try again.";
const BUSY: &str = "Too many people are signing in right now. Try again in a moment.";

#[derive(Deserialize)]
pub struct LoginQuery {
    pub req: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn show(State(state): State<AppState>, browser: BrowserCookie, Query(q): Query<LoginQuery>) -> Result<Response, PageError> {
    let Some(p) = pending::load(&state, &q.req).await? else { return Ok(expired_page()) };
    if !p.started_in(&browser) {
        return Ok(other_browser_page(&state));
    }
    if let Some(provider) = crate::upstream::chosen(&state.config, p.idp_hint.as_deref(), p.login_hint.as_deref()) {
        return Ok(respond::redirect(&format!("{}?req={}", paths::upstream_start(provider), q.req)));
    }
    let client_name = client_name(&state, &p.client_id).await?;
    let username = p.login_hint.as_deref().unwrap_or("");
    let page = LoginPage { client_name: &client_name, request_id: &q.req, csrf: &p.csrf, username, error: None, providers: provider_links(&state, &q.req), password_form: state.config.login.password_form, passkeys: state.webauthn.is_some() };
    Ok(render(StatusCode::OK, &page))
}

/// "Continue with ..." for every upstream provider, carrying the pending request.
fn provider_links<'a>(state: &'a AppState, request_id: &str) -> Vec<ProviderLink<'a>> {
    state.config.upstream.iter().map(|p| ProviderLink { href: format!("{}?req={request_id}", paths::upstream_start(&p.id)), display_name: &p.display_name }).collect()
}

/// Failures are throttled per account and per caller address: behind a trusted proxy, the
/// browser's address from `X-Forwarded-For`, not the proxy's (which all users would share).
/// Only the browser that started the sign-in may post it: a cross-site form (login CSRF, signing
/// the victim in as the attacker) carries no binding cookie and is refused.
pub async fn submit(State(state): State<AppState>, ClientIp(ip): ClientIp, UserAgent(user_agent): UserAgent, cookie: SessionCookie, browser: BrowserCookie, Form(form): Form<LoginForm>) -> Result<Response, PageError> {
    Ok(submit_inner(&state, ip, user_agent, &cookie, &browser, form).await?)
}

async fn submit_inner(state: &AppState, ip: IpAddr, user_agent: Option<String>, cookie: &SessionCookie, browser: &BrowserCookie, form: LoginForm) -> Result<Response, AppError> {
    let Some(mut p) = pending::load(state, &form.req).await? else { return Ok(expired_page()) };
    if !p.started_in(browser) {
        return Ok(other_browser_page(state));
    }
    if !state.config.login.password_form {
        return Ok(super::pages::error_page("Passwords are off", "Sign in through your organisation's identity provider instead."));
    }
    if !bool::from(form.csrf.as_bytes().ct_eq(p.csrf.as_bytes())) {
        return Ok(super::pages::error_page("Invalid form", "The sign-in form was not sent by this page. Go back and try again."));
    }
    let client_name = client_name(state, &p.client_id).await?;
    let page = |status: StatusCode, message: &'static str| {
        let providers = provider_links(state, &form.req);
        render(status, &LoginPage { client_name: &client_name, request_id: &form.req, csrf: &p.csrf, username: &form.username, error: Some(message), providers, password_form: true, passkeys: state.webauthn.is_some() })
    };
    let account_key = format!("loginfail:acct:{}", form.username.to_lowercase());
    let ip_key = ip_failure_key(ip);
    let limits = &state.config.login;
    // Each attempt takes its place in both counters before the password is checked, atomically,
    // so parallel guesses cannot all slip under the limit; a success gives them back.
    let by_account = state.ephemeral.incr(&account_key, limits.failure_window).await?;
    let by_ip = state.ephemeral.incr(&ip_key, limits.failure_window).await?;
    if by_account > limits.max_failures_per_account || by_ip > limits.max_failures_per_ip {
        state.metrics.security_event("login_throttled");
        return Ok(page(StatusCode::TOO_MANY_REQUESTS, THROTTLED));
    }
    let user = state.durable.user_by_username(&form.username).await?;
    let hash = user.as_ref().filter(|u| !u.disabled).map(|u| u.password_hash.as_str());
    let ok = match state.passwords.verify(&form.password, hash).await {
        Ok(ok) => ok,
        Err(PasswordError::Busy) => {
            // Not a failed guess: the attempt gives its places back and is asked to come again.
            state.ephemeral.add(&account_key, -1, limits.failure_window).await?;
            state.ephemeral.add(&ip_key, -1, limits.failure_window).await?;
            state.metrics.security_event("login_busy");
            let mut response = page(StatusCode::SERVICE_UNAVAILABLE, BUSY);
            response.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            return Ok(response);
        }
        Err(e) => return Err(AppError::Internal(e.to_string())),
    };
    let Some(user) = user.filter(|_| ok) else {
        state.metrics.security_event("login_failed");
        tracing::info!(%ip, "failed sign-in");
        return Ok(page(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS));
    };
    state.ephemeral.delete(&account_key).await?;
    state.ephemeral.add(&ip_key, -1, limits.failure_window).await?;
    // A fresh session id at every login: a session id planted before login is worthless.
    session::replace_presented(state, cookie, &user.sub).await?;
    let origin = SessionOrigin { ip: Some(ip), user_agent };
    let fresh = session::create(state, &user.sub, &["pwd"], &origin, state.now()).await?;
    p.logged_in_at = Some(fresh.session.auth_time);
    pending::save(state, &form.req, &p).await?;
    let mut response = respond::redirect(&format!("{}?req={}", paths::AUTHORIZE_RESUME, form.req));
    response.headers_mut().insert(header::SET_COOKIE, session::set_cookie(state, &fresh.secret));
    Ok(response)
}

/// The counter of failed sign-ins from one address (passwords and passkeys alike).
pub(crate) fn ip_failure_key(ip: IpAddr) -> String {
    format!("loginfail:ip:{ip}")
}

pub async fn client_name(state: &AppState, client_id: &str) -> Result<String, AppError> {
    Ok(state.client(client_id).await?.map(|c| c.name).unwrap_or_else(|| "an application".into()))
}
