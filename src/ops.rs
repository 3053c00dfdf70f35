//! Health, readiness and metrics endpoints.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 when both stores answer; 503 naming the one that does not. Answers within the store
/// budget: a store already known to be down is not waited for.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, eph) = tokio::join!(state.durable.ping(), state.ephemeral.ping());
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let (db_ok, eph_ok) = (db.is_ok(), eph.is_ok());
    let status = if db_ok && eph_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"database": word(db_ok), "ephemeral": word(eph_ok)})))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"))],
        state.metrics.render(),
    )
}
