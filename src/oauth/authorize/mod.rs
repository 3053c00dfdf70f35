//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2). The client and its
//! redirect URI are proven before anything is sent back to it; until then errors are a page.

pub mod checks;
pub mod decide;
pub mod pending;
pub mod respond;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;

use self::pending::PendingAuthorization;
use self::respond::ReplyTo;
use crate::error::{AppError, ErrorCode, OAuthError, PageError};
use crate::tokens::code::{self, AuthorizationCode};
use crate::oauth::form::parse_unique;
use crate::clock::UnixTime;
use crate::oauth::{acr, authority, par};
use crate::paths;
use crate::tokens::grant::Grant;
use crate::state::AppState;
use crate::store::{Client, User};
use crate::ui::pages::error_page;
use crate::session::{self, LoadedSession, SessionCookie};
use decide::{decide, Facts, SecondFactorFacts, Step};
use pending::BrowserCookie;

pub async fn authorize_get(State(state): State<AppState>, cookie: SessionCookie, browser: BrowserCookie, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    Ok(start(&state, &cookie, &browser, query.unwrap_or_default().as_bytes(), state.now()).await?)
}

pub async fn authorize_post(State(state): State<AppState>, cookie: SessionCookie, browser: BrowserCookie, headers: HeaderMap, body: Bytes) -> Result<Response, PageError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(error_page("Invalid request", "The authorization request must be a form post."));
    }
    Ok(start(&state, &cookie, &browser, &body, state.now()).await?)
}

/// The whole request is decided at one instant, `now`.
async fn start(state: &AppState, cookie: &SessionCookie, browser: &BrowserCookie, raw: &[u8], now: UnixTime) -> Result<Response, AppError> {
    if raw.len() > checks::MAX_REQUEST_BYTES {
        state.metrics.security_event("authorize_request_too_large");
        return Ok(error_page("Invalid request", "The authorization request is too large."));
    }
    let params = match parse_unique(raw) {
        Ok(p) => p,
        Err(e) => return Ok(error_page("Invalid request", &e.description)),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // 1. The client and its redirect URI, before anything is sent back.
    let Some(client_id) = get("client_id") else {
        return Ok(error_page("Invalid request", "The request does not name an application (client_id)."));
    };
    let Some(client) = state.client(client_id).await? else {
        return Ok(error_page("Unknown application", "The application that sent you here is not registered."));
    };
    // A pushed request (RFC 9126 §4): what was pushed is the whole request; nothing in the
    // query overrides it. Before its redirect URI is known, a refusal is a page.
    if let Some(request_uri) = get("request_uri") {
        return match par::take(state, &client, request_uri).await? {
            Ok(pending) => proceed(state, cookie, browser, &client, None, pending, now).await,
            Err(_) => Ok(error_page("Invalid request", "This sign-in link is invalid, expired or already used. Go back to the application and sign in again.")),
        };
    }
    let redirect_uri = match checks::redirect_uri(&client, get("redirect_uri")) {
        Ok(uri) => uri.to_string(),
        Err(why) => return Ok(error_page("Invalid redirect", why)),
    };
    // 2. Everything else is answered at the redirect URI.
    let mode = checks::response_mode(get("response_mode")).unwrap_or(checks::ResponseMode::Query);
    // An oversized `state` is not echoed back: the client learns the request was refused.
    let oversized = checks::oversized(&params);
    let echo_state = get("state").filter(|_| oversized != Some("state"));
    let reply = ReplyTo { redirect_uri: &redirect_uri, state: echo_state, mode, issuer: state.config.issuer() };
    if let Some(name) = oversized {
        state.metrics.security_event("authorize_parameter_too_long");
        return Ok(respond::error(&reply, &OAuthError::invalid_request(format!("`{name}` is too long"))));
    }
    if state.config.par.required || client.require_par {
        return Ok(respond::error(&reply, &OAuthError::invalid_request("authorization requests must be pushed first (PAR, RFC 9126)")));
    }
    match validate(&client, &params, &redirect_uri, now) {
        Ok(pending) => proceed(state, cookie, browser, &client, None, pending, now).await,
        Err(err) => Ok(respond::error(&reply, &err)),
    }
}

/// The checks of an authorization request once its client and redirect URI are proven: also
/// what a pushed request (PAR) must pass.
pub fn validate(client: &Client, params: &HashMap<String, String>, redirect_uri: &str, now: UnixTime) -> Result<PendingAuthorization, OAuthError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("request").is_some() {
        return Err(OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if get("request_uri").is_some() {
        return Err(OAuthError::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    match get("response_type") {
        Some("code") => {}
        Some(other) => return Err(OAuthError::new(ErrorCode::UnsupportedResponseType, format!("response_type `{other}` is not supported; use code"))),
        None => return Err(OAuthError::invalid_request("response_type is required")),
    }
    if !client.allows_grant(crate::oauth::grant_type::GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("this client may not use the authorization code flow"));
    }
    let scopes = checks::scopes(client, get("scope"))?;
    let code_challenge = checks::pkce(client, get("code_challenge"), get("code_challenge_method"))?;
    let response_mode = checks::response_mode(get("response_mode"))?;
    let prompt = checks::prompt(get("prompt"))?;
    let max_age = checks::max_age(get("max_age"))?;
    Ok(PendingAuthorization {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        redirect_uri_given: get("redirect_uri").is_some(),
        scopes,
        state: get("state").map(str::to_string),
        nonce: get("nonce").map(str::to_string),
        code_challenge,
        response_mode,
        prompt,
        max_age,
        login_hint: get("login_hint").map(str::to_string),
        created_at: now,
        csrf: crate::crypto::secrets::random_token(24),
        logged_in_at: None,
        consented_by: None,
        browser: String::new(),
        acr_values: get("acr_values").map(str::to_string),
        factor_proven_at: None,
        idp_hint: get("idp").map(str::to_string),
        dpop_jkt: checks::dpop_jkt(get("dpop_jkt"))?,
        device: None,
    })
}

/// Starts the sign-in and consent of a device authorization (RFC 8628) for the browser at the
/// verification page: the same steps as an authorization request, ending in an approval.
pub async fn start_device(state: &AppState, cookie: &SessionCookie, browser: &BrowserCookie, client: &Client, pending: PendingAuthorization) -> Result<Response, AppError> {
    proceed(state, cookie, browser, client, None, pending, state.now()).await
}

#[derive(serde::Deserialize)]
pub struct ResumeQuery {
    req: String,
}

/// Where the login and consent pages send the browser back to.
pub async fn resume(State(state): State<AppState>, cookie: SessionCookie, browser: BrowserCookie, Query(q): Query<ResumeQuery>) -> Result<Response, PageError> {
    let Some(pending) = pending::load(&state, &q.req).await? else {
        return Ok(expired_page());
    };
    if !pending.started_in(&browser) {
        return Ok(other_browser_page(&state));
    }
    let Some(client) = state.client(&pending.client_id).await? else {
        return Ok(error_page("Unknown application", "The application is no longer registered."));
    };
    Ok(proceed(&state, &cookie, &browser, &client, Some(q.req.clone()), pending, state.now()).await?)
}

pub fn expired_page() -> Response {
    error_page("Sign-in expired", "This sign-in took too long or was already completed.")
}

/// A step of a sign-in that this browser did not start (a forwarded link, a cross-site form):
/// refused, so no one completes a sign-in or consent someone else began.
pub fn other_browser_page(state: &AppState) -> Response {
    state.metrics.security_event("pending_request_other_browser");
    error_page("Start again", "This sign-in was started in another browser or window. Go back to the application and sign in again.")
}

/// The live session and its user, when both are usable.
pub async fn current_user(state: &AppState, cookie: &SessionCookie, now: UnixTime) -> Result<Option<(LoadedSession, User)>, AppError> {
    let Some(loaded) = session::load(state, cookie, now).await? else { return Ok(None) };
    match state.durable.user(&loaded.session.sub).await? {
        Some(user) if !user.disabled => Ok(Some((loaded, user))),
        _ => Ok(None),
    }
}

/// Decides what the user must do next: sign in, consent, or nothing (a code is issued).
async fn proceed(state: &AppState, cookie: &SessionCookie, browser: &BrowserCookie, client: &Client, id: Option<String>, mut pending: PendingAuthorization, now: UnixTime) -> Result<Response, AppError> {
    let reply = ReplyTo {
        redirect_uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
        mode: pending.response_mode,
        issuer: state.config.issuer(),
    };
    let current = current_user(state, cookie, now).await?;
    if let Some((_, user)) = &current {
        // What the client may ask for, narrowed to what this person may hold (before consent).
        pending.scopes = authority::scopes_for_user(state.durable.as_ref(), &user.sub, std::mem::take(&mut pending.scopes)).await?;
    }
    // A device approval is always asked: the user must see which application gets in, and
    // compare the code, even for first-party clients and scopes allowed before.
    let first_party = client.first_party && pending.device.is_none();
    let consented = match &current {
        Some((_, user)) if decide::consent_needs_record(&pending, first_party, Some(&user.sub)) => state.durable.consented_scopes(&user.sub, &client.id).await?,
        _ => Vec::new(),
    };
    let second_factor = match &current {
        Some((loaded, user)) => SecondFactorFacts {
            required: state.config.mfa.required || client.require_mfa || acr::asks_for_mfa(pending.acr_values.as_deref()),
            // One query on this path: the factors alone (not the recovery codes left).
            enrolled: state.durable.factors(&user.sub).await?.iter().any(|f| f.confirmed_at.is_some()),
            proven_at: loaded.session.factor_proven_at,
        },
        None => SecondFactorFacts::default(),
    };
    let facts = Facts {
        session_auth_time: current.as_ref().map(|(s, _)| s.session.auth_time),
        session_sub: current.as_ref().map(|(_, u)| u.sub.as_str()),
        consented_scopes: &consented,
        first_party,
        second_factor,
        now,
    };
    // A device request has no redirect URI to answer at (and never asks `prompt=none`).
    let refuse = |err: OAuthError| if pending.device.is_some() { error_page("Cannot continue", &err.description) } else { respond::error(&reply, &err) };
    let next = match decide(&pending, facts) {
        Step::Issue => None,
        Step::Login => Some(paths::LOGIN),
        Step::Consent => Some(paths::CONSENT),
        Step::SecondFactor => Some(paths::LOGIN_FACTOR),
        Step::EnrolFactor => Some(paths::LOGIN_ENROL),
        Step::InteractionRequired => return Ok(refuse(OAuthError::new(ErrorCode::InteractionRequired, "the user must prove a second factor"))),
        Step::LoginRequired => return Ok(refuse(OAuthError::new(ErrorCode::LoginRequired, "the user must sign in"))),
        Step::ConsentRequired => return Ok(refuse(OAuthError::new(ErrorCode::ConsentRequired, "the user must allow this application"))),
    };
    if let Some(page) = next {
        // A new pending request belongs to this browser from now on (resumed ones already do).
        let set_cookie = if id.is_none() { pending.bind_to(state, browser) } else { None };
        let id = id.unwrap_or_else(pending::new_id);
        pending::save(state, &id, &pending).await?;
        let mut response = respond::redirect(&format!("{page}?req={id}"));
        if let Some(c) = set_cookie {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        return Ok(response);
    }
    let Some((loaded, user)) = current else { return Err(AppError::Internal("decided to issue without a session".into())) };
    if let Some(id) = &id {
        pending::remove(state, id).await?;
    }
    if let Some(device) = &pending.device {
        let grant = Grant {
            client_id: client.id.clone(),
            sub: user.sub.clone(),
            scopes: pending.scopes.clone(),
            auth_time: loaded.session.auth_time,
            sid: loaded.session.sid.clone(),
            amr: loaded.session.amr.clone(),
        };
        return crate::ui::device::approve(state, device, client, &loaded.session, grant, now).await;
    }
    session::record_client(state, &loaded.session, &client.id, now).await?;
    let code = code::issue(
        state,
        &AuthorizationCode {
            grant: Grant {
                client_id: client.id.clone(),
                sub: user.sub,
                scopes: pending.scopes,
                auth_time: loaded.session.auth_time,
                sid: loaded.session.sid,
                amr: loaded.session.amr,
            },
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_given: pending.redirect_uri_given,
            code_challenge: pending.code_challenge,
            nonce: pending.nonce,
            dpop_jkt: pending.dpop_jkt,
        },
    )
    .await?;
    Ok(respond::success(&reply, &code))
}
