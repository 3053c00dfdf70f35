//! The admin HTTP API for API keys: JSON in and out, authorized by an access token carrying
//! the `sesame:admin` scope (obtained with client_credentials).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::api_keys::{self, Admin, NewApiKey};
use super::AdminError;
use crate::oauth::bearer::{authorize, bearer};
use crate::state::AppState;

pub const ADMIN_SCOPE: &str = "sesame:admin";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/api-keys", get(list).post(generate))
        .route("/admin/api-keys/test", post(test))
        .route("/admin/api-keys/{id}/revoke", post(revoke))
        .route("/admin/api-keys/{id}/rotate", post(rotate))
}

/// The caller's client id, once its token is verified.
async fn admin(state: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    let token = bearer(&Method::GET, headers, &[]).map_err(IntoResponse::into_response)?;
    let claims = authorize(state, &token, ADMIN_SCOPE).await.map_err(IntoResponse::into_response)?;
    Ok(claims.client_id)
}

fn failure(e: AdminError) -> Response {
    let (status, code) = match &e {
        AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        _ => {
            tracing::error!(error = %e, "admin API failure");
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "server_error"}))).into_response();
        }
    };
    (status, Json(json!({"error": code, "error_description": e.to_string()}))).into_response()
}

fn ops<'a>(state: &'a AppState, actor: &'a str) -> Admin<'a> {
    Admin { config: &state.config, durable: state.durable.as_ref(), ephemeral: Some(state.ephemeral.as_ref()), actor, now: state.now() }
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let actor = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match ops(&state, &actor).list().await {
        Ok(keys) => Json(json!({ "keys": keys })).into_response(),
        Err(e) => failure(e),
    }
}

async fn generate(State(state): State<AppState>, headers: HeaderMap, Json(spec): Json<NewApiKey>) -> Response {
    let actor = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match ops(&state, &actor).generate(&spec).await {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(e) => failure(e),
    }
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let actor = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match ops(&state, &actor).revoke(&id).await {
        Ok(()) => Json(json!({ "id": id, "revoked": true })).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RotateBody {
    #[serde(with = "humantime_serde")]
    grace: Option<Duration>,
}

async fn rotate(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>, body: Option<Json<RotateBody>>) -> Response {
    let actor = match admin(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let grace = body.and_then(|Json(b)| b.grace).unwrap_or(Duration::from_secs(86_400));
    match ops(&state, &actor).rotate(&id, grace).await {
        Ok(issued) => (StatusCode::CREATED, Json(json!({ "id": issued.id, "key": issued.key, "replaces": id, "expires_at": issued.expires_at }))).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
struct TestBody {
    key: String,
}

async fn test(State(state): State<AppState>, headers: HeaderMap, Json(body): Json<TestBody>) -> Response {
    if let Err(r) = admin(&state, &headers).await {
        return r;
    }
    match api_keys::test(&state, &body.key).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => failure(e),
    }
}
