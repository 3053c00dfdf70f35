//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). A request that proves who
//! asks (an ID token of this session) ends the session at once; any other gets a confirmation page.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::crypto::verify::{verify_own_jwt, Expect};
use crate::error::{AppError, PageError};
use crate::oauth::authorize::respond;
use crate::oauth::form::parse_unique;
use crate::tokens::id::IdTokenClaims;
use crate::state::AppState;
use crate::store::Client;
use crate::ui::pages::{error_page, render, LogoutPage, MessagePage};
use crate::session::{self, EndReason, SessionCookie};

/// The audit caller of the sessions this endpoint ends.
const ACTOR: &str = "logout";

pub async fn end_session_get(State(state): State<AppState>, cookie: SessionCookie, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    handle(&state, &cookie, query.unwrap_or_default().as_bytes()).await
}

pub async fn end_session_post(State(state): State<AppState>, cookie: SessionCookie, body: Bytes) -> Result<Response, PageError> {
    handle(&state, &cookie, &body).await
}

async fn handle(state: &AppState, cookie: &SessionCookie, raw: &[u8]) -> Result<Response, PageError> {
    let params = match parse_unique(raw) {
        Ok(p) => p,
        Err(e) => return Ok(error_page("Invalid request", &e.description)),
    };
    Ok(start(state, cookie, &params).await?)
}

/// Where to send the browser afterwards, once proven to belong to the client.
struct Target {
    client: Option<Client>,
    redirect: Option<String>,
    state: Option<String>,
}

async fn start(state: &AppState, cookie: &SessionCookie, params: &HashMap<String, String>) -> Result<Response, AppError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let hint = match get("id_token_hint") {
        Some(token) => match verify_own_jwt::<IdTokenClaims>(&state.keys, token, state.config.issuer(), Expect::ID_TOKEN_HINT, state.now()) {
            Ok(v) => Some(v.claims),
            Err(_) => return Ok(error_page("Invalid sign-out request", "The id_token_hint is not a valid ID token from this server.")),
        },
        None => None,
    };
    let client_id = match (get("client_id"), &hint) {
        (Some(id), Some(h)) if id != h.aud => return Ok(error_page("Invalid sign-out request", "client_id does not match the id_token_hint.")),
        (Some(id), _) => Some(id.to_string()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let target = match resolve_target(state, client_id.as_deref(), get("post_logout_redirect_uri"), get("state")).await? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let current = session::load(state, cookie, state.now()).await?;
    let Some(current) = current else {
        return Ok(finish(state, &target, false));
    };
    let proven = hint.as_ref().is_some_and(|h| h.sub == current.session.sub && h.sid.as_deref().is_none_or(|sid| sid == current.session.sid));
    if proven {
        session::end_current(state, &current, EndReason::Logout, ACTOR).await?;
        return Ok(finish(state, &target, true));
    }
    Ok(render(
        StatusCode::OK,
        &LogoutPage {
            csrf: &current.session.csrf,
            client_name: target.client.as_ref().map(|c| c.name.as_str()),
            client_id: target.client.as_ref().map(|c| c.id.as_str()),
            post_logout_redirect_uri: target.redirect.as_deref(),
            state: target.state.as_deref(),
        },
    ))
}

async fn resolve_target(state: &AppState, client_id: Option<&str>, redirect: Option<&str>, st: Option<&str>) -> Result<Result<Target, Response>, AppError> {
    let client = match client_id {
        Some(id) => match state.client(id).await? {
            Some(c) => Some(c),
            None => return Ok(Err(error_page("Invalid sign-out request", "The application is not registered."))),
        },
        None => None,
    };
    if let Some(uri) = redirect {
        let registered = client.as_ref().is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
        if !registered {
            return Ok(Err(error_page("Invalid sign-out request", "The address to return to after sign-out is not registered for this application.")));
        }
    }
    Ok(Ok(Target { client, redirect: redirect.map(str::to_string), state: st.map(str::to_string) }))
}

fn finish(state: &AppState, target: &Target, ended: bool) -> Response {
    let mut response = match &target.redirect {
        Some(uri) => match url::Url::parse(uri) {
            Ok(mut url) => {
                if let Some(s) = &target.state {
                    url.query_pairs_mut().append_pair("state", s);
                }
                respond::redirect(url.as_str())
            }
            Err(_) => error_page("Invalid sign-out request", "The return address is invalid."),
        },
        None => render(StatusCode::OK, &MessagePage { title: "Signed out", message: "You are signed out. You can close this window." }),
    };
    if ended {
        response.headers_mut().insert(header::SET_COOKIE, session::clear_cookie(state));
    }
    response
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

pub async fn confirm(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<ConfirmForm>) -> Result<Response, PageError> {
    let target = match resolve_target(&state, form.client_id.as_deref(), form.post_logout_redirect_uri.as_deref(), form.state.as_deref()).await? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let Some(current) = session::load(&state, &cookie, state.now()).await? else {
        return Ok(finish(&state, &target, false));
    };
    if !bool::from(form.csrf.as_bytes().ct_eq(current.session.csrf.as_bytes())) {
        return Ok(error_page("Invalid form", "The sign-out form was not sent by this page."));
    }
    if form.decision != "logout" {
        return Ok(render(StatusCode::OK, &MessagePage { title: "Still signed in", message: "You are still signed in. You can close this window." }));
    }
    session::end_current(&state, &current, EndReason::Logout, ACTOR).await?;
    Ok(finish(&state, &target, true))
}
