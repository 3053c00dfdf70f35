//! The passkey endpoints: JSON for `static/passkey.js` (and any script that speaks WebAuthn).
//!
//! - `/account/passkeys` (GET: the signed-in user's passkeys and the session's CSRF value),
//!   `/account/passkeys/begin` and `/account/passkeys/finish`: registering a passkey for the
//!   signed-in user. A user who already has a confirmed factor must have proven one in this
//!   session (a stolen password alone adds no passkey).
//! - `/login/factor/passkey/begin?req=` and `/login/factor/passkey/finish`: a passkey as the
//!   second step of a sign-in, bound to the pending request, its browser and its session like
//!   the code form.
//! - `/login/passkey/begin?req=` and `/login/passkey/finish`: passwordless sign-in from the login
//!   page with a discoverable passkey, bound to the pending request and its browser like the
//!   password form, failures counted against the caller's address like wrong passwords.
//!
//! Every post carries a CSRF value (the session's on the account endpoints, the pending
//! request's at sign-in) in the `X-CSRF-Token` header or the body's `csrf` field, compared in
//! constant time; and a JSON body, which a cross-site form cannot send.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::second_factor;
use crate::error::{mfa_failure, AppError};
use crate::mfa::passkey::Passkeys;
use crate::mfa::{self, MfaError};
use crate::net::{ClientIp, UserAgent};
use crate::oauth::authorize::current_user;
use crate::oauth::authorize::pending::{self, BrowserCookie, PendingAuthorization};
use crate::paths;
use crate::session::{self, LoadedSession, SessionCookie, SessionOrigin};
use crate::state::AppState;
use crate::store::{FactorKind, User};

pub const CSRF_HEADER: &str = "x-csrf-token";

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refusal(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, json!({"error": error, "error_description": description}))
}

/// The CSRF value a request carries: the header, else the body's field.
fn csrf_of<'a>(headers: &'a HeaderMap, body: Option<&'a str>) -> &'a str {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).or(body).unwrap_or("")
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn mfa_response(e: MfaError, status_refused: StatusCode) -> Result<Response, AppError> {
    match e {
        MfaError::PasskeysUnavailable => Ok(refusal(StatusCode::NOT_FOUND, "passkeys_unavailable", "passkeys are not available on this server")),
        MfaError::PasskeyRefused(reason) => Ok(refusal(status_refused, "passkey_refused", reason)),
        MfaError::Invalid(why) => Ok(refusal(StatusCode::BAD_REQUEST, "invalid_request", &why)),
        other => Err(mfa_failure(other)),
    }
}

// --- registration (the account's passkeys) -------------------------------------------------------

/// The signed-in user who may manage their factors, or the refusal: no session (401); a user with
/// a confirmed factor whose session has not proven one (403).
async fn manager(state: &AppState, cookie: &SessionCookie) -> Result<Result<(LoadedSession, User), Response>, AppError> {
    let Some((session, user)) = current_user(state, cookie, state.now()).await? else {
        return Ok(Err(refusal(StatusCode::UNAUTHORIZED, "login_required", "sign in first")));
    };
    if session.session.factor_proven_at.is_none() {
        let factors = mfa::list_factors(state.durable.as_ref(), &user.sub).await.map_err(mfa_failure)?;
        if factors.has_confirmed_factor() {
            state.metrics.security_event("passkey_register_without_second_factor");
            return Ok(Err(refusal(StatusCode::FORBIDDEN, "second_factor_required", "prove a second factor in this session first")));
        }
    }
    Ok(Ok((session, user)))
}

/// What a registration step needs: a manager (`manager`) whose post carries the session's CSRF
/// value, on a server that can register passkeys; or the refusal.
async fn registrar<'a>(state: &'a AppState, cookie: &SessionCookie, csrf: &str) -> Result<Result<(LoadedSession, User, Passkeys<'a>), Response>, AppError> {
    let (session, user) = match manager(state, cookie).await? {
        Ok(found) => found,
        Err(refused) => return Ok(Err(refused)),
    };
    if !same(csrf, &session.session.csrf) {
        return Ok(Err(refusal(StatusCode::FORBIDDEN, "invalid_csrf", "the request was not sent by this site")));
    }
    match Passkeys::of(state) {
        Ok(passkeys) => Ok(Ok((session, user, passkeys))),
        Err(e) => mfa_response(e, StatusCode::BAD_REQUEST).map(Err),
    }
}

/// The signed-in user's passkeys, and the CSRF value their posts carry (a cross-site page cannot
/// read this answer).
pub async fn list(State(state): State<AppState>, cookie: SessionCookie) -> Result<Response, AppError> {
    let Some((session, user)) = current_user(&state, &cookie, state.now()).await? else {
        return Ok(refusal(StatusCode::UNAUTHORIZED, "login_required", "sign in first"));
    };
    let factors = mfa::list_factors(state.durable.as_ref(), &user.sub).await.map_err(mfa_failure)?;
    let passkeys: Vec<_> = factors.factors.into_iter().filter(|f| f.kind == FactorKind::Passkey).collect();
    Ok(json_response(StatusCode::OK, json!({"csrf": session.session.csrf, "passkeys": passkeys, "available": state.webauthn.is_some()})))
}

#[derive(Deserialize, Default)]
pub struct BeginBody {
    #[serde(default)]
    csrf: Option<String>,
}

/// Starts a registration: `{ceremony, publicKey}` for `navigator.credentials.create`.
pub async fn register_begin(State(state): State<AppState>, cookie: SessionCookie, headers: HeaderMap, Json(body): Json<BeginBody>) -> Result<Response, AppError> {
    let (session, user, passkeys) = match registrar(&state, &cookie, csrf_of(&headers, body.csrf.as_deref())).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    match passkeys.begin_registration(&user, &session.session.sid).await {
        Ok(start) => Ok(json_response(StatusCode::OK, serde_json::to_value(start).map_err(|e| AppError::Internal(e.to_string()))?)),
        Err(e) => mfa_response(e, StatusCode::BAD_REQUEST),
    }
}

#[derive(Deserialize)]
pub struct RegisterFinishBody {
    #[serde(default)]
    csrf: Option<String>,
    ceremony: String,
    #[serde(default)]
    name: Option<String>,
    credential: RegisterPublicKeyCredential,
}

/// Finishes a registration: the new passkey's summary (201).
pub async fn register_finish(State(state): State<AppState>, cookie: SessionCookie, headers: HeaderMap, Json(body): Json<RegisterFinishBody>) -> Result<Response, AppError> {
    let (session, user, passkeys) = match registrar(&state, &cookie, csrf_of(&headers, body.csrf.as_deref())).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let name = body.name.as_deref().filter(|n| !n.trim().is_empty());
    match passkeys.finish_registration(&user, &session.session.sid, &body.ceremony, name, &body.credential, &user.sub, state.now()).await {
        Ok(summary) => {
            state.metrics.security_event("passkey_registered");
            Ok(json_response(StatusCode::CREATED, json!({"passkey": summary})))
        }
        Err(e) => mfa_response(e, StatusCode::BAD_REQUEST),
    }
}

// --- the second step of a sign-in -----------------------------------------------------------------

#[derive(Deserialize)]
pub struct StepQuery {
    req: String,
}

/// Starts a passkey step for the pending request `req`: `{publicKey}` for
/// `navigator.credentials.get`, allowing the session user's passkeys.
pub async fn sign_in_begin(State(state): State<AppState>, browser: BrowserCookie, cookie: SessionCookie, headers: HeaderMap, Query(q): Query<StepQuery>, Json(body): Json<BeginBody>) -> Result<Response, AppError> {
    let csrf = csrf_of(&headers, body.csrf.as_deref());
    let step = match second_factor::load(&state, &q.req, &browser, &cookie, Some(csrf)).await? {
        Ok(step) => step,
        Err(page) => return Ok(page),
    };
    let passkeys = match Passkeys::of(&state) {
        Ok(p) => p,
        Err(e) => return mfa_response(e, StatusCode::BAD_REQUEST),
    };
    match passkeys.begin_authentication(&step.user.sub, &q.req).await {
        Ok(options) => Ok(json_response(StatusCode::OK, serde_json::to_value(options).map_err(|e| AppError::Internal(e.to_string()))?)),
        Err(e) => mfa_response(e, StatusCode::BAD_REQUEST),
    }
}

#[derive(Deserialize)]
pub struct SignInFinishBody {
    req: String,
    #[serde(default)]
    csrf: Option<String>,
    credential: PublicKeyCredential,
}

/// Checks the assertion; on success the session has proven a second factor and the answer is
/// `{redirect}`: where the authorization resumes.
pub async fn sign_in_finish(State(state): State<AppState>, ClientIp(ip): ClientIp, browser: BrowserCookie, cookie: SessionCookie, headers: HeaderMap, Json(body): Json<SignInFinishBody>) -> Result<Response, AppError> {
    let csrf = csrf_of(&headers, body.csrf.as_deref());
    let step = match second_factor::load(&state, &body.req, &browser, &cookie, Some(csrf)).await? {
        Ok(step) => step,
        Err(page) => return Ok(page),
    };
    let passkeys = match Passkeys::of(&state) {
        Ok(p) => p,
        Err(e) => return mfa_response(e, StatusCode::BAD_REQUEST),
    };
    let caller = ip.to_string();
    match passkeys.finish_authentication(&step.user.sub, &body.req, &body.credential, Some(&caller), state.now()).await {
        Ok(proof) => {
            state.metrics.security_event("second_factor_ok");
            let next = second_factor::proven(&state, &body.req, step, &proof.amr).await?;
            Ok(json_response(StatusCode::OK, json!({"redirect": next})))
        }
        Err(e) => {
            state.metrics.security_event("second_factor_failed");
            mfa_response(e, StatusCode::UNAUTHORIZED)
        }
    }
}

// --- passwordless sign-in (the login page) ---------------------------------------------------------

/// The pending request of a passwordless step: local sign-in on, the request alive, started in
/// this browser, and the post carrying its CSRF value; or the refusal.
async fn pending_sign_in(state: &AppState, req: &str, browser: &BrowserCookie, csrf: &str) -> Result<Result<PendingAuthorization, Response>, AppError> {
    // Local sign-in is off (`login.password_form = false`): only the upstream providers sign in.
    if !state.config.login.password_form {
        return Ok(Err(refusal(StatusCode::FORBIDDEN, "local_sign_in_off", "sign in through your organisation's identity provider")));
    }
    let Some(p) = pending::load(state, req).await? else {
        return Ok(Err(refusal(StatusCode::BAD_REQUEST, "expired", "this sign-in has expired; go back to the application and start again")));
    };
    if !p.started_in(browser) {
        return Ok(Err(refusal(StatusCode::FORBIDDEN, "other_browser", "this sign-in was started in another browser")));
    }
    if !same(csrf, &p.csrf) {
        return Ok(Err(refusal(StatusCode::FORBIDDEN, "invalid_csrf", "the request was not sent by this site")));
    }
    Ok(Ok(p))
}

/// Starts a passwordless sign-in for the pending request `req`: `{publicKey}` for
/// `navigator.credentials.get`, naming no credential.
pub async fn passwordless_begin(State(state): State<AppState>, browser: BrowserCookie, headers: HeaderMap, Query(q): Query<StepQuery>, Json(body): Json<BeginBody>) -> Result<Response, AppError> {
    if let Err(refused) = pending_sign_in(&state, &q.req, &browser, csrf_of(&headers, body.csrf.as_deref())).await? {
        return Ok(refused);
    }
    let passkeys = match Passkeys::of(&state) {
        Ok(p) => p,
        Err(e) => return mfa_response(e, StatusCode::BAD_REQUEST),
    };
    match passkeys.begin_discoverable(&q.req).await {
        Ok(options) => Ok(json_response(StatusCode::OK, serde_json::to_value(options).map_err(|e| AppError::Internal(e.to_string()))?)),
        Err(e) => mfa_response(e, StatusCode::BAD_REQUEST),
    }
}

/// Checks a passwordless assertion. On success the browser gets a fresh session whose sign-in
/// proved two factors (the passkey, and the user verification it requires), and the answer is
/// `{redirect}`: where the authorization resumes.
pub async fn passwordless_finish(State(state): State<AppState>, ClientIp(ip): ClientIp, UserAgent(user_agent): UserAgent, browser: BrowserCookie, cookie: SessionCookie, headers: HeaderMap, Json(body): Json<SignInFinishBody>) -> Result<Response, AppError> {
    let mut p = match pending_sign_in(&state, &body.req, &browser, csrf_of(&headers, body.csrf.as_deref())).await? {
        Ok(p) => p,
        Err(refused) => return Ok(refused),
    };
    let passkeys = match Passkeys::of(&state) {
        Ok(p) => p,
        Err(e) => return mfa_response(e, StatusCode::BAD_REQUEST),
    };
    // Counted before the check and given back on success, like a password attempt.
    let limits = &state.config.login;
    let ip_key = super::login::ip_failure_key(ip);
    if state.ephemeral.incr(&ip_key, limits.failure_window).await? > limits.max_failures_per_ip {
        state.metrics.security_event("login_throttled");
        return Ok(refusal(StatusCode::TOO_MANY_REQUESTS, "throttled", "too many failed sign-in attempts; wait a few minutes"));
    }
    let now = state.now();
    let identified = match passkeys.finish_discoverable(&body.req, &body.credential, Some(&ip.to_string()), now).await {
        Ok(identified) => identified,
        Err(e) => {
            state.metrics.security_event("passkey_login_failed");
            return mfa_response(e, StatusCode::UNAUTHORIZED);
        }
    };
    state.ephemeral.add(&ip_key, -1, limits.failure_window).await?;
    state.metrics.security_event("passkey_login_ok");
    // A fresh session id at every sign-in, as after a password.
    session::replace_presented(&state, &cookie, &identified.sub).await?;
    let origin = SessionOrigin { ip: Some(ip), user_agent };
    let mut fresh = session::create(&state, &identified.sub, &identified.proof.amr, &origin, now).await?;
    session::prove_second_factor(&state, &mut fresh, &[], now).await?;
    p.logged_in_at = Some(fresh.session.auth_time);
    p.factor_proven_at = Some(now);
    pending::save(&state, &body.req, &p).await?;
    let mut response = json_response(StatusCode::OK, json!({"redirect": format!("{}?req={}", paths::AUTHORIZE_RESUME, body.req)}));
    response.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&state, &fresh.secret));
    Ok(response)
}
