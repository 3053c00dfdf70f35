//! The device verification page (RFC 8628 §3.3): the user types the code their device shows,
//! then signs in and consents through the pending-authorization pipeline (the same login,
//! second factor and consent pages as the code flow); the last step records the answer here
//! for the device to collect at the token endpoint.
//!
//! Guessing codes is throttled per client address; an unknown, expired or already used code
//! all get the same answer. A code arriving in the link (`verification_uri_complete`) only
//! fills the form: the user still submits it from this page (a cross-site post carries no
//! form token), and the consent page names the application and repeats the code.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::pages::{error_page, render, DevicePage, MessagePage};
use crate::audit::{self, Event};
use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_hex, random_token};
use crate::error::{AppError, PageError};
use crate::net::ClientIp;
use crate::oauth::authorize::checks::{Prompt, ResponseMode};
use crate::oauth::authorize::pending::{BrowserCookie, PendingAuthorization, PendingDevice, BROWSER_COOKIE};
use crate::oauth::authorize::start_device;
use crate::oauth::device::records::{self, Decision};
use crate::oauth::device::user_code;
use crate::session::{self, Session, SessionCookie};
use crate::state::AppState;
use crate::store::Client;
use crate::tokens::grant::Grant;

const WRONG_CODE: &str = "That code is not valid, or it has expired. Check the code your device shows and try again.";
const THROTTLED: &str = "Too many wrong codes. Wait a few minutes, then try again.";
const START_AGAIN: &str = "This form was not sent from this page. Enter the code again.";

#[derive(Deserialize)]
pub struct DeviceQuery {
    #[serde(default)]
    user_code: Option<String>,
}

#[derive(Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    csrf: String,
}

/// The form token of a browser: derived from its binding cookie, which other sites can neither
/// read nor send along with a cross-site post (`SameSite=Lax`).
fn form_token(browser_secret: &str) -> String {
    hash_hex(&format!("device-form:{browser_secret}"))
}

/// What goes back into the form: the code as typed, bounded (it is only ever echoed).
fn echo(typed: &str) -> String {
    match user_code::normalise(typed) {
        Some(code) => user_code::display(&code),
        None => typed.chars().filter(|c| !c.is_control()).take(16).collect(),
    }
}

pub async fn show(State(state): State<AppState>, browser: BrowserCookie, Query(q): Query<DeviceQuery>) -> Response {
    let (secret, fresh) = match browser.0 {
        Some(secret) => (secret, false),
        None => (generate_secret(), true),
    };
    let typed = q.user_code.as_deref().map(echo).unwrap_or_default();
    let mut response = render(StatusCode::OK, &DevicePage { user_code: &typed, csrf: &form_token(&secret), error: None });
    if fresh {
        response.headers_mut().append(header::SET_COOKIE, session::cookie_header(&state, BROWSER_COOKIE, &secret, None));
    }
    response
}

pub async fn submit(State(state): State<AppState>, ClientIp(ip): ClientIp, cookie: SessionCookie, browser: BrowserCookie, Form(form): Form<DeviceForm>) -> Result<Response, PageError> {
    Ok(submit_inner(&state, ip, &cookie, &browser, form).await?)
}

async fn submit_inner(state: &AppState, ip: IpAddr, cookie: &SessionCookie, browser: &BrowserCookie, form: DeviceForm) -> Result<Response, AppError> {
    let typed = echo(&form.user_code);
    let Some(secret) = browser.0.as_deref() else {
        return Ok(render(StatusCode::BAD_REQUEST, &DevicePage { user_code: &typed, csrf: "", error: Some(START_AGAIN) }));
    };
    let csrf = form_token(secret);
    if !bool::from(form.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
        return Ok(render(StatusCode::BAD_REQUEST, &DevicePage { user_code: &typed, csrf: &csrf, error: Some(START_AGAIN) }));
    }
    let page = |status, message| render(status, &DevicePage { user_code: &typed, csrf: &csrf, error: Some(message) });
    // Every attempt takes its place before the lookup (parallel guesses cannot slip under the
    // limit); a code that was right gives it back.
    let key = failure_key(ip);
    let window = state.config.device.failure_window;
    if state.ephemeral.incr(&key, window).await? > state.config.device.max_failures_per_ip {
        state.metrics.security_event("device_code_throttled");
        return Ok(page(StatusCode::TOO_MANY_REQUESTS, THROTTLED));
    }
    let now = state.now();
    let Some((code_hash, request)) = records::find_by_user_code(state, &form.user_code, now).await? else {
        state.metrics.security_event("device_code_wrong");
        tracing::info!(%ip, "wrong device user code");
        return Ok(page(StatusCode::BAD_REQUEST, WRONG_CODE));
    };
    state.ephemeral.add(&key, -1, window).await?;
    let Some(client) = state.client(&request.client_id).await? else {
        return Ok(error_page("Unknown application", "The application that asked for this code is no longer registered."));
    };
    let pending = PendingAuthorization {
        client_id: client.id.clone(),
        redirect_uri: String::new(),
        redirect_uri_given: false,
        scopes: request.scopes,
        state: None,
        nonce: None,
        code_challenge: None,
        response_mode: ResponseMode::Query,
        // Asked every time: see `authorize::proceed`.
        prompt: Prompt { consent: true, ..Prompt::default() },
        max_age: None,
        login_hint: None,
        created_at: now,
        csrf: random_token(24),
        logged_in_at: None,
        consented_by: None,
        browser: String::new(),
        acr_values: None,
        factor_proven_at: None,
        idp_hint: None,
        dpop_jkt: None,
        device: Some(PendingDevice { code_hash, user_code: user_code::display(&request.user_code) }),
    };
    start_device(state, cookie, browser, &client, pending).await
}

fn failure_key(ip: IpAddr) -> String {
    format!("devicefail:ip:{ip}")
}

/// The user allowed the device: records the grant for its next poll.
pub async fn approve(state: &AppState, device: &PendingDevice, client: &Client, session: &Session, grant: Grant, now: UnixTime) -> Result<Response, AppError> {
    let sub = grant.sub.clone();
    let details = json!({"client_id": client.id, "scopes": grant.scopes, "user_code": device.user_code, "sid": session.sid});
    if !records::decide(state, &device.code_hash, &Decision::Approved { grant }, now).await? {
        return Ok(too_late());
    }
    // Ending this session revokes what the device gets, and tells the client, as for any other.
    session::record_client(state, session, &client.id, now).await?;
    audit::record(state, Event { kind: "device.authorization", subject: &sub, caller: Some(format!("client:{}", client.id)), ok: true, reason: None, details }).await?;
    let message = format!("{} is signed in. You can close this page and return to your device.", client.name);
    Ok(render(StatusCode::OK, &MessagePage { title: "Device connected", message: &message }))
}

/// The user denied the device at the consent page.
pub async fn deny(state: &AppState, device: &PendingDevice, client_id: &str, sub: &str, now: UnixTime) -> Result<Response, AppError> {
    if !records::decide(state, &device.code_hash, &Decision::Denied, now).await? {
        return Ok(too_late());
    }
    let details = json!({"client_id": client_id, "user_code": device.user_code});
    audit::record(state, Event { kind: "device.authorization", subject: sub, caller: Some(format!("client:{client_id}")), ok: false, reason: Some("denied by the user"), details }).await?;
    Ok(render(StatusCode::OK, &MessagePage { title: "Access denied", message: "The device was not allowed in. You can close this page." }))
}

fn too_late() -> Response {
    error_page("Code expired", "This code has expired or was already used. Start again on your device.")
}
