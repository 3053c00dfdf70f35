//! Changing the factors from the account page: set up an authenticator app (confirmed with its
//! first code, which also proves a second factor for this session), remove a factor, replace
//! the recovery codes. Each needs the session's CSRF value and [`changing`]'s permission.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::{changing, CsrfForm, ACTOR};
use crate::error::{mfa_failure, PageError};
use crate::mfa::{self, Mfa, MfaError, TotpEnrolment};
use crate::oauth::authorize::respond;
use crate::paths;
use crate::session::{self, SessionCookie};
use crate::state::AppState;
use crate::ui::pages::{error_page, render, AccountTotpPage, ErrorPage, RecoveryCodesPage};

const WRONG_CODE: &str = "That code is not right. Check your app and try again.";

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    /// The user's label for the app; empty means the default.
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub struct FactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    factor_id: String,
    /// The app's first code (confirmation only).
    #[serde(default)]
    code: String,
}

fn enrolment_page(status: StatusCode, csrf: &str, e: &TotpEnrolment, error: Option<&str>) -> Response {
    let page = AccountTotpPage { csrf, factor_id: &e.factor_id, secret: &e.secret, otpauth_uri: &e.otpauth_uri, qr_svg: &e.qr_svg, error };
    render(status, &page)
}

fn start_again() -> Response {
    error_page("Set-up expired", "This set-up is no longer open. Start again from your account page.")
}

/// Starts an enrolment: a new secret each time (an earlier unconfirmed one is replaced).
pub async fn start_totp(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<StartForm>) -> Result<Response, PageError> {
    let me = match changing(&state, &cookie, &form.csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    match Mfa::of(&state).enrol_totp(&me.user, name, ACTOR, state.now()).await {
        Ok(enrolment) => Ok(enrolment_page(StatusCode::OK, &me.session.session.csrf, &enrolment, None)),
        Err(MfaError::Invalid(message)) => Ok(error_page("Invalid name", &message)),
        Err(e) => Err(mfa_failure(e).into()),
    }
}

/// Confirms the app with its first code: that code proves a second factor for this session. The
/// first recovery codes are shown once; otherwise back to the account page.
pub async fn confirm_totp(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<FactorForm>) -> Result<Response, PageError> {
    let mut me = match changing(&state, &cookie, &form.csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    let mfa = Mfa::of(&state);
    let now = state.now();
    match mfa.confirm_totp(&me.user.sub, &form.factor_id, &form.code, ACTOR, now).await {
        Ok(codes) => {
            session::prove_second_factor(&state, &mut me.session, &["otp"], now).await?;
            Ok(match codes {
                Some(codes) => render(StatusCode::OK, &RecoveryCodesPage { codes: &codes, continue_to: paths::ACCOUNT }),
                None => respond::redirect(paths::ACCOUNT),
            })
        }
        Err(MfaError::WrongCode) => match mfa.reshow_totp(&me.user, &form.factor_id, now).await {
            // The same secret again, so the user retries with the app they just set up.
            Ok(again) => Ok(enrolment_page(StatusCode::UNAUTHORIZED, &me.session.session.csrf, &again, Some(WRONG_CODE))),
            Err(MfaError::NotFound(_) | MfaError::Invalid(_)) => Ok(start_again()),
            Err(e) => Err(mfa_failure(e).into()),
        },
        Err(MfaError::NotFound(_) | MfaError::Invalid(_)) => Ok(start_again()),
        Err(e) => Err(mfa_failure(e).into()),
    }
}

/// Removes one of the user's factors (their recovery codes stay).
pub async fn remove(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<FactorForm>) -> Result<Response, PageError> {
    let me = match changing(&state, &cookie, &form.csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    match mfa::remove_factor(state.durable.as_ref(), &me.user.sub, &form.factor_id, ACTOR, state.now()).await {
        Ok(()) => Ok(respond::redirect(paths::ACCOUNT)),
        Err(MfaError::NotFound(_)) => {
            let page = ErrorPage { title: "Not found", message: "That factor is not one of yours, or it was removed already." };
            Ok(render(StatusCode::NOT_FOUND, &page))
        }
        Err(e) => Err(mfa_failure(e).into()),
    }
}

/// Ten new recovery codes, replacing every earlier one; shown once.
pub async fn regenerate_recovery_codes(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<CsrfForm>) -> Result<Response, PageError> {
    let me = match changing(&state, &cookie, &form.csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    let codes = mfa::regenerate_recovery_codes(state.durable.as_ref(), &me.user.sub, ACTOR, state.now()).await.map_err(mfa_failure)?;
    Ok(render(StatusCode::OK, &RecoveryCodesPage { codes: &codes, continue_to: paths::ACCOUNT }))
}
