//! The admin HTTP API for SSO sessions: list them (all, or one user's), end one, end all of a
//! user's. Same authorization as the rest of `/admin`: a token with `sesame:admin`, and a
//! person's token only while they hold the admin role.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::http::AdminCaller;
use super::sessions;
use crate::error::AdminApiError;
use crate::session::SessionEnder;
use crate::state::AppState;

type Answer = Result<Response, AdminApiError>;

#[derive(Deserialize)]
pub struct ListQuery {
    user: Option<String>,
}

pub async fn list(State(state): State<AppState>, AdminCaller(actor): AdminCaller, Query(q): Query<ListQuery>) -> Answer {
    let listed = sessions::list(&SessionEnder::of(&state, &actor), q.user.as_deref()).await?;
    Ok(Json(json!({ "sessions": listed })).into_response())
}

pub async fn end(State(state): State<AppState>, AdminCaller(actor): AdminCaller, Path(id): Path<String>) -> Answer {
    let ended = sessions::end(&SessionEnder::of(&state, &actor), &id).await?;
    Ok(Json(json!({ "sessions": [ended] })).into_response())
}

pub async fn end_all_of_user(State(state): State<AppState>, AdminCaller(actor): AdminCaller, Path(username): Path<String>) -> Answer {
    let ended = sessions::end_all_of_user(&SessionEnder::of(&state, &actor), &username).await?;
    Ok(Json(json!({ "username": username, "sessions": ended })).into_response())
}
