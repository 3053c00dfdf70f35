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

/// 200 when both stores answer; 503 naming the one that does not, or saying the node drains
/// (it is stopping: load balancers should send no more, though it still serves what comes).
/// Answers within the store budget: a store already known to be down is not waited for.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, eph) = tokio::join!(state.durable.ping(), state.ephemeral.ping());
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let (db_ok, eph_ok) = (db.is_ok(), eph.is_ok());
    let (status, summary) = match (state.lifecycle.is_draining(), db_ok && eph_ok) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        (false, true) => (StatusCode::OK, "ok"),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    (status, Json(json!({"status": summary, "database": word(db_ok), "ephemeral": word(eph_ok)})))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"))],
        state.metrics.render(),
    )
}
