//! The admin HTTP API for API keys (sessions are in `http_sessions`): JSON in and out,
//! authorized by an access token carrying the `sesame:admin` scope (obtained with
//! client_credentials).

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::api_keys::{self, Admin, NewApiKey};
use crate::oauth::authority::ADMIN_ROLE;
use crate::api_keys::verify::Verifier;
use crate::error::AdminApiError;
use crate::oauth::bearer::{authorize, BearerError, HeaderBearerToken};
use crate::state::AppState;

pub use crate::oauth::scope::ADMIN_SCOPE;

/// The calling client's id, once its header token is verified to carry `sesame:admin`.
pub struct AdminCaller(pub String);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let HeaderBearerToken(token) = HeaderBearerToken::from_request_parts(parts, state).await?;
        let claims = authorize(state, &token, ADMIN_SCOPE).await?;
        // A person's token: their authority is their role now, not the scope they were once given.
        if claims.sub != claims.client_id {
            let user = state.durable.user(&claims.sub).await?.filter(|u| !u.disabled);
            let is_admin = match user {
                Some(u) => state.durable.user_roles(&u.sub).await?.iter().any(|r| r == ADMIN_ROLE),
                None => false,
            };
            if !is_admin {
                return Err(BearerError::InsufficientScope("the signed-in user does not hold the admin role"));
            }
            return Ok(Self(format!("user:{}", claims.sub)));
        }
        Ok(Self(claims.client_id))
    }
}

fn ops<'a>(state: &'a AppState, actor: &'a str) -> Admin<'a> {
    Admin { config: &state.config, durable: state.durable.as_ref(), ephemeral: state.ephemeral.as_ref(), actor, now: state.now() }
}

type Answer = Result<Response, AdminApiError>;

pub async fn list(State(state): State<AppState>, AdminCaller(actor): AdminCaller) -> Answer {
    let keys = ops(&state, &actor).list().await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

pub async fn generate(State(state): State<AppState>, AdminCaller(actor): AdminCaller, body: Result<Json<NewApiKey>, JsonRejection>) -> Answer {
    let Json(spec) = body?;
    let issued = ops(&state, &actor).generate(&spec).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

pub async fn revoke(State(state): State<AppState>, AdminCaller(actor): AdminCaller, Path(id): Path<String>) -> Answer {
    ops(&state, &actor).revoke(&id).await?;
    // This node forgets the key before answering; the others hear it on the bus.
    state.api_key_cache.clear();
    Ok(Json(json!({ "id": id, "revoked": true })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RotateBody {
    #[serde(with = "humantime_serde")]
    grace: Option<Duration>,
}

pub async fn rotate(State(state): State<AppState>, AdminCaller(actor): AdminCaller, Path(id): Path<String>, body: Result<Option<Json<RotateBody>>, JsonRejection>) -> Answer {
    let grace = body?.and_then(|Json(b)| b.grace).unwrap_or(Duration::from_secs(86_400));
    let issued = ops(&state, &actor).rotate(&id, grace).await?;
    state.api_key_cache.clear();
    Ok((StatusCode::CREATED, Json(json!({ "id": issued.id, "key": issued.key, "replaces": id, "expires_at": issued.expires_at }))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UsageQuery {
    /// Unix seconds; default: the last 24 hours.
    since: Option<i64>,
}

pub async fn usage(State(state): State<AppState>, AdminCaller(actor): AdminCaller, Path(id): Path<String>, query: Result<Query<UsageQuery>, QueryRejection>) -> Answer {
    let Query(q) = query?;
    let since = q.since.unwrap_or(state.now() - 86_400);
    Ok(Json(ops(&state, &actor).usage(&id, since).await?).into_response())
}

#[derive(Deserialize)]
pub struct TestBody {
    key: String,
}

pub async fn test(State(state): State<AppState>, _: AdminCaller, body: Result<Json<TestBody>, JsonRejection>) -> Answer {
    let Json(body) = body?;
    Ok(Json(api_keys::test(&Verifier::of(&state), &body.key).await?).into_response())
}
