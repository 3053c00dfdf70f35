//! The consent page: the requested scopes, allow or deny; an allow is remembered per user and client.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::login::client_name;
use super::pages::{error_page, render, scope_description, ConsentPage};
use crate::error::{ErrorCode, OAuthError, PageError};
use crate::oauth::authorize::respond::{self, ReplyTo};
use crate::oauth::authorize::pending::BrowserCookie;
use crate::oauth::authorize::{current_user, expired_page, other_browser_page, pending};
use crate::paths;
use crate::session::SessionCookie;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ConsentQuery {
    req: String,
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    req: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

pub async fn show(State(state): State<AppState>, cookie: SessionCookie, browser: BrowserCookie, Query(q): Query<ConsentQuery>) -> Result<Response, PageError> {
    let now = state.now();
    let Some(p) = pending::load(&state, &q.req).await? else { return Ok(expired_page()) };
    if !p.started_in(&browser) {
        return Ok(other_browser_page(&state));
    }
    let Some((_, user)) = current_user(&state, &cookie, now).await? else {
        // The session ended meanwhile: back through the flow, which asks for a login.
        return Ok(respond::redirect(&format!("{}?req={}", paths::AUTHORIZE_RESUME, q.req)));
    };
    let client_name = client_name(&state, &p.client_id).await?;
    let scopes = p.scopes.iter().map(|s| (s.as_str(), scope_description(s))).collect();
    let user_code = p.device.as_ref().map(|d| d.user_code.as_str());
    Ok(render(StatusCode::OK, &ConsentPage { client_name: &client_name, request_id: &q.req, csrf: &p.csrf, username: &user.username, scopes, user_code }))
}

pub async fn submit(State(state): State<AppState>, cookie: SessionCookie, browser: BrowserCookie, Form(form): Form<ConsentForm>) -> Result<Response, PageError> {
    let now = state.now();
    let Some(mut p) = pending::load(&state, &form.req).await? else { return Ok(expired_page()) };
    if !p.started_in(&browser) {
        return Ok(other_browser_page(&state));
    }
    if !bool::from(form.csrf.as_bytes().ct_eq(p.csrf.as_bytes())) {
        return Ok(error_page("Invalid form", "The consent form was not sent by this page. Go back and try again."));
    }
    let Some((_, user)) = current_user(&state, &cookie, now).await? else {
        return Ok(respond::redirect(&format!("{}?req={}", paths::AUTHORIZE_RESUME, form.req)));
    };
    match form.decision.as_str() {
        "allow" => {
            let mut granted = state.durable.consented_scopes(&user.sub, &p.client_id).await?;
            for s in &p.scopes {
                if !granted.contains(s) {
                    granted.push(s.clone());
                }
            }
            state.durable.save_consent(&user.sub, &p.client_id, &granted, now).await?;
            p.consented_by = Some(user.sub.clone());
            pending::save(&state, &form.req, &p).await?;
            Ok(respond::redirect(&format!("{}?req={}", paths::AUTHORIZE_RESUME, form.req)))
        }
        "deny" => {
            pending::remove(&state, &form.req).await?;
            if let Some(device) = &p.device {
                return Ok(crate::ui::device::deny(&state, device, &p.client_id, &user.sub, now).await?);
            }
            let reply = ReplyTo { redirect_uri: &p.redirect_uri, state: p.state.as_deref(), mode: p.response_mode, issuer: state.config.issuer() };
            Ok(respond::error(&reply, &OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")))
        }
        _ => Ok(error_page("Invalid form", "Choose allow or deny.")),
    }
}
