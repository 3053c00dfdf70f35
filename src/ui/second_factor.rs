//! The second step of a sign-in: a code from an authenticator app or a recovery code; or, when
//! a second factor is required and the user has none, setting up an authenticator app first.
//! Both steps belong to the pending request (same browser, its CSRF value) and to the session
//! its password step created: a second factor proves the session's user, no one else.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::login::client_name;
use super::pages::{error_page, render, EnrolPage, FactorPage, RecoveryCodesPage};
use crate::error::{mfa_failure, AppError, PageError};
use crate::mfa::{Mfa, MfaError, Throttle};
use crate::net::ClientIp;
use crate::oauth::authorize::pending::{BrowserCookie, PendingAuthorization};
use crate::oauth::authorize::{current_user, expired_page, other_browser_page, pending, respond};
use crate::paths;
use crate::session::{self, LoadedSession, SessionCookie};
use crate::state::AppState;
use crate::store::{FactorKind, User};

const WRONG_CODE: &str = "That code is not right. Check your app and try again.";
const THROTTLED: &str = "Too many wrong codes. Wait a few minutes, then try again.";

#[derive(Deserialize)]
pub struct StepQuery {
    req: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    /// The enrolment being confirmed (enrol form only).
    #[serde(default)]
    factor_id: String,
}

/// The pending request and the signed-in user a step belongs to, or the page to answer instead.
pub(crate) struct Step {
    pub(crate) pending: PendingAuthorization,
    pub(crate) session: LoadedSession,
    pub(crate) user: User,
    pub(crate) client_name: String,
}

pub(crate) async fn load(state: &AppState, req: &str, browser: &BrowserCookie, cookie: &SessionCookie, csrf: Option<&str>) -> Result<Result<Step, Response>, AppError> {
    let Some(p) = pending::load(state, req).await? else { return Ok(Err(expired_page())) };
    if !p.started_in(browser) {
        return Ok(Err(other_browser_page(state)));
    }
    if csrf.is_some_and(|c| !bool::from(c.as_bytes().ct_eq(p.csrf.as_bytes()))) {
        return Ok(Err(error_page("Invalid form", "The form was not sent by this page. Go back and try again.")));
    }
    // The password step of this very request signed this browser in; without that session
    // there is nothing to add a factor to.
    let Some((session, user)) = current_user(state, cookie, state.now()).await? else {
        return Ok(Err(respond::redirect(&format!("{}?req={req}", paths::LOGIN))));
    };
    let client_name = client_name(state, &p.client_id).await?;
    Ok(Ok(Step { pending: p, session, user, client_name }))
}

/// Marks the factor proven (by `methods`, RFC 8176 `amr` values) for the session and this
/// request; returns where the authorization resumes.
pub(crate) async fn proven(state: &AppState, req: &str, mut step: Step, methods: &[&str]) -> Result<String, AppError> {
    let now = state.now();
    session::prove_second_factor(state, &mut step.session, methods, now).await?;
    step.pending.factor_proven_at = Some(now);
    pending::save(state, req, &step.pending).await?;
    Ok(format!("{}?req={req}", paths::AUTHORIZE_RESUME))
}

pub async fn show(State(state): State<AppState>, browser: BrowserCookie, cookie: SessionCookie, Query(q): Query<StepQuery>) -> Result<Response, PageError> {
    let step = match load(&state, &q.req, &browser, &cookie, None).await? {
        Ok(step) => step,
        Err(page) => return Ok(page),
    };
    let passkey = has_passkey(&state, &step.user.sub).await?;
    Ok(render(StatusCode::OK, &FactorPage { client_name: &step.client_name, request_id: &q.req, csrf: &step.pending.csrf, error: None, passkey }))
}

pub async fn submit(State(state): State<AppState>, ClientIp(ip): ClientIp, browser: BrowserCookie, cookie: SessionCookie, Form(form): Form<CodeForm>) -> Result<Response, PageError> {
    let step = match load(&state, &form.req, &browser, &cookie, Some(&form.csrf)).await? {
        Ok(step) => step,
        Err(page) => return Ok(page),
    };
    let caller = ip.to_string();
    let checked = Mfa::of(&state).verify_second_factor(&Throttle::of(&state), &step.user.sub, &form.code, Some(&caller), state.now()).await;
    let (status, message) = match checked {
        Ok(method) => {
            state.metrics.security_event("second_factor_ok");
            return Ok(respond::redirect(&proven(&state, &form.req, step, &[method.amr()]).await?));
        }
        Err(MfaError::WrongCode) => (StatusCode::UNAUTHORIZED, WRONG_CODE),
        Err(MfaError::Throttled) => (StatusCode::TOO_MANY_REQUESTS, THROTTLED),
        Err(e) => return Err(mfa_failure(e).into()),
    };
    state.metrics.security_event("second_factor_failed");
    let passkey = has_passkey(&state, &step.user.sub).await?;
    Ok(render(status, &FactorPage { client_name: &step.client_name, request_id: &form.req, csrf: &step.pending.csrf, error: Some(message), passkey }))
}

/// Starts setting up an authenticator app for the signed-in user (a new secret each time the
/// page is shown; an earlier unconfirmed one is replaced).
pub async fn show_enrol(State(state): State<AppState>, browser: BrowserCookie, cookie: SessionCookie, Query(q): Query<StepQuery>) -> Result<Response, PageError> {
    let step = match load(&state, &q.req, &browser, &cookie, None).await? {
        Ok(step) => step,
        Err(page) => return Ok(page),
    };
    let enrolment = Mfa::of(&state).enrol_totp(&step.user, None, "sign-in", state.now()).await.map_err(mfa_failure)?;
    let page = EnrolPage {
        client_name: &step.client_name,
        request_id: &q.req,
        csrf: &step.pending.csrf,
        factor_id: &enrolment.factor_id,
        secret: &enrolment.secret,
        otpauth_uri: &enrolment.otpauth_uri,
        qr_svg: &enrolment.qr_svg,
        error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

/// Confirms the new app with its first code; that code proves the second factor for this
/// sign-in. The first recovery codes are shown once, then the authorization resumes.
pub async fn submit_enrol(State(state): State<AppState>, browser: BrowserCookie, cookie: SessionCookie, Form(form): Form<CodeForm>) -> Result<Response, PageError> {
    let step = match load(&state, &form.req, &browser, &cookie, Some(&form.csrf)).await? {
        Ok(step) => step,
        Err(page) => return Ok(page),
    };
    let mfa = Mfa::of(&state);
    match mfa.confirm_totp(&step.user.sub, &form.factor_id, &form.code, "sign-in", state.now()).await {
        Ok(codes) => {
            let next = proven(&state, &form.req, step, &["otp"]).await?;
            Ok(match codes {
                Some(codes) => render(StatusCode::OK, &RecoveryCodesPage { codes: &codes, continue_to: &next }),
                None => respond::redirect(&next),
            })
        }
        Err(MfaError::WrongCode) => {
            // The same secret again, so the user can retry with the app they just set up.
            let again = match mfa.reshow_totp(&step.user, &form.factor_id, state.now()).await {
                Ok(again) => again,
                Err(MfaError::NotFound(_) | MfaError::Invalid(_)) => return Ok(respond::redirect(&format!("{}?req={}", paths::LOGIN_ENROL, form.req))),
                Err(e) => return Err(mfa_failure(e).into()),
            };
            let page = EnrolPage {
                client_name: &step.client_name,
                request_id: &form.req,
                csrf: &step.pending.csrf,
                factor_id: &again.factor_id,
                secret: &again.secret,
                otpauth_uri: &again.otpauth_uri,
                qr_svg: &again.qr_svg,
                error: Some(WRONG_CODE),
            };
            Ok(render(StatusCode::UNAUTHORIZED, &page))
        }
        Err(MfaError::NotFound(_) | MfaError::Invalid(_)) => Ok(respond::redirect(&format!("{}?req={}", paths::LOGIN_ENROL, form.req))),
        Err(e) => Err(mfa_failure(e).into()),
    }
}

/// Whether the passkey button belongs on the page: the server is a relying party and the user
/// has a confirmed passkey.
async fn has_passkey(state: &AppState, sub: &str) -> Result<bool, AppError> {
    if state.webauthn.is_none() {
        return Ok(false);
    }
    let factors = state.durable.factors(sub).await?;
    Ok(factors.iter().any(|f| f.kind == FactorKind::Passkey && f.confirmed_at.is_some()))
}

