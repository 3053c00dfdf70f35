//! The signed-in user's sessions on the account page: each live one (this one marked), and
//! ending another one. Signing out of this one is `sign_out` beside it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::{posted, sign_out_of, SignedIn, ACTOR};
use crate::clock::rfc3339;
use crate::error::{AppError, PageError};
use crate::oauth::authorize::respond;
use crate::paths;
use crate::session::{EndReason, SessionCookie, SessionEnder};
use crate::state::AppState;
use crate::store::SsoSessionWithClients;
use crate::ui::pages::{render, ErrorPage, SessionRow};

/// The user's live sessions, newest first, this one marked (and listed even if the registry
/// were to leave it out, so it can always be signed out of).
pub async fn rows(state: &AppState, me: &SignedIn) -> Result<Vec<SessionRow>, AppError> {
    let current = &me.session.session;
    let live = state.durable.live_sso_sessions(Some(&me.user.sub), state.now()).await?;
    let mut rows = Vec::with_capacity(live.len() + 1);
    for one in &live {
        rows.push(row(state, one, one.session.sid == current.sid).await?);
    }
    if !rows.iter().any(|r| r.current) {
        rows.insert(
            0,
            SessionRow {
                id: current.sid.clone(),
                current: true,
                device: "This browser".into(),
                ip: None,
                signed_in_at: rfc3339(current.auth_time),
                methods: current.amr.join(", "),
                last_seen: rfc3339(current.last_seen),
                applications: String::new(),
            },
        );
    }
    Ok(rows)
}

async fn row(state: &AppState, live: &SsoSessionWithClients, current: bool) -> Result<SessionRow, AppError> {
    let s = &live.session;
    let mut names = Vec::with_capacity(live.clients.len());
    for id in &live.clients {
        names.push(state.client(id).await?.map(|c| c.name).unwrap_or_else(|| id.clone()));
    }
    Ok(SessionRow {
        id: s.sid.clone(),
        current,
        device: s.user_agent.clone().filter(|ua| !ua.trim().is_empty()).unwrap_or_else(|| "Unknown browser".into()),
        ip: s.ip.clone(),
        signed_in_at: rfc3339(s.auth_time),
        methods: s.amr.join(", "),
        last_seen: rfc3339(s.last_seen_at),
        applications: names.join(", "),
    })
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    session_id: String,
}

/// Ends one of the user's other sessions (this one: signs out), then shows the page again.
/// Another user's session, or one that is over, is "not found", whether it exists or not.
pub async fn end_other(State(state): State<AppState>, cookie: SessionCookie, Form(form): Form<EndForm>) -> Result<Response, PageError> {
    let me = match posted(&state, &cookie, &form.csrf).await? {
        Ok(me) => me,
        Err(page) => return Ok(page),
    };
    if form.session_id == me.session.session.sid {
        return Ok(sign_out_of(&state, &me).await?);
    }
    let target = state.durable.sso_session(&form.session_id).await?;
    let mine = target.is_some_and(|t| t.sub == me.user.sub && t.ended_at.is_none());
    let ended = if mine { SessionEnder::of(&state, ACTOR).end(&form.session_id, EndReason::EndedByUser).await? } else { None };
    if ended.is_none() {
        let page = ErrorPage { title: "Session not found", message: "That session was not found: it may have ended already. Go back to your account page." };
        return Ok(render(StatusCode::NOT_FOUND, &page));
    }
    Ok(respond::redirect(paths::ACCOUNT))
}
