//! The account page (`/account`): the signed-in user's second factors and sessions. Every
//! form posts the session's CSRF value (compared in constant time), so a cross-site form does
//! nothing; changing the factors also needs [`mfa::may_change_factors`]: once the user has a
//! factor, only a session that proved one may add, remove or replace anything.
//!
//! There is no standalone login: a browser signs in through an application, then comes here.

pub mod factors;
pub mod sessions;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::pages::{error_page, render, AccountPage, ErrorPage, FactorRow, MessagePage, SessionRow};
use crate::clock::rfc3339;
use crate::error::{mfa_failure, AppError, PageError};
use crate::mfa::{self, FactorList, FactorSummary};
use crate::oauth::authorize::current_user;
use crate::session::{self, EndReason, LoadedSession, SessionCookie};
use crate::state::AppState;
use crate::store::User;

/// The actor of the audit events this page causes.
pub const ACTOR: &str = "account";

/// The signed-in user of a request and their live session.
pub struct SignedIn {
    pub session: LoadedSession,
    pub user: User,
}

/// What a request gets instead of its page: a message or an error page, ready to send.
type Refusal = Response;

/// Without a live session: nobody's data, just how to get one.
fn not_signed_in() -> Response {
    let page = MessagePage { title: "Not signed in", message: "Sign in through an application first, then come back to this page." };
    render(StatusCode::UNAUTHORIZED, &page)
}

async fn signed_in(state: &AppState, cookie: &SessionCookie) -> Result<Result<SignedIn, Refusal>, AppError> {
    Ok(match current_user(state, cookie, state.now()).await? {
        Some((session, user)) => Ok(SignedIn { session, user }),
        None => Err(not_signed_in()),
    })
}

/// The signed-in user of a posted form, when the form carries this session's CSRF value.
async fn posted(state: &AppState, cookie: &SessionCookie, csrf: &str) -> Result<Result<SignedIn, Refusal>, AppError> {
    let me = match signed_in(state, cookie).await? {
        Ok(me) => me,
        Err(page) => return Ok(Err(page)),
    };
    if !bool::from(csrf.as_bytes().ct_eq(me.session.session.csrf.as_bytes())) {
        return Ok(Err(error_page("Invalid form", "The form was not sent by this page. Go back to your account page and try again.")));
    }
    Ok(Ok(me))
}

/// [`posted`], and the session may change the user's factors.
async fn changing(state: &AppState, cookie: &SessionCookie, csrf: &str) -> Result<Result<SignedIn, Refusal>, AppError> {
    let me = match posted(state, cookie, csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(Err(page)),
    };
    let list = mfa::list_factors(state.durable.as_ref(), &me.user.sub).await.map_err(mfa_failure)?;
    if !mfa::may_change_factors(&list, me.session.session.factor_proven_at.is_some()) {
        let page = ErrorPage {
            title: "Verify it's you first",
            message: "Changing your second factors needs a session that proved one: sign in again through an application and enter a code from your authenticator app (or a recovery code).",
        };
        return Ok(Err(render(StatusCode::FORBIDDEN, &page)));
    }
    Ok(Ok(me))
}

fn row(f: &FactorSummary) -> FactorRow<'_> {
    FactorRow {
        id: &f.id,
        kind: f.kind.as_str(),
        name: &f.name,
        confirmed: f.confirmed,
        added: rfc3339(f.created_at),
        last_used: f.last_used_at.map(rfc3339).unwrap_or_else(|| "never".to_string()),
    }
}

fn account_page(me: &SignedIn, list: &FactorList, passkeys: bool, sessions: Vec<SessionRow>) -> Response {
    let session = &me.session.session;
    let page = AccountPage {
        username: &me.user.username,
        name: me.user.name.as_deref(),
        csrf: &session.csrf,
        factors: list.factors.iter().map(row).collect(),
        has_factor: list.has_confirmed_factor(),
        recovery_codes_left: list.recovery_codes_left,
        may_change: mfa::may_change_factors(list, session.factor_proven_at.is_some()),
        passkeys,
        sessions,
    };
    render(StatusCode::OK, &page)
}

pub async fn show(State(state): State<AppState>, cookie: SessionCookie) -> Result<Response, PageError> {
    let me = match signed_in(&state, &cookie).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    let list = mfa::list_factors(state.durable.as_ref(), &me.user.sub).await.map_err(mfa_failure)?;
    let sessions = sessions::rows(&state, &me).await?;
    Ok(account_page(&me, &list, state.webauthn.is_some(), sessions))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends this session and clears its cookie.
pub async fn sign_out(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<CsrfForm>) -> Result<Response, PageError> {
    let me = match posted(&state, &cookie, &form.csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    Ok(sign_out_of(&state, &me).await?)
}

/// Ends the request's own session and clears its cookie.
async fn sign_out_of(state: &AppState, me: &SignedIn) -> Result<Response, AppError> {
    session::end_current(state, &me.session, EndReason::SignOut, ACTOR).await?;
    let mut response = render(StatusCode::OK, &MessagePage { title: "Signed out", message: "You are signed out. You can close this window." });
    response.headers_mut().insert(header::SET_COOKIE, session::clear_cookie(state));
    Ok(response)
}
