//! Health, readiness and metrics endpoints.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 when both stores answer; 503 naming the one that does not, or saying the node drains
/// (it is stopping: load balancers should send no more, though it still serves what comes).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, eph) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, state.durable.ping()),
        tokio::time::timeout(PROBE_TIMEOUT, state.ephemeral.ping()),
    );
    let db_ok = matches!(db, Ok(Ok(())));
    let eph_ok = matches!(eph, Ok(Ok(())));
    if !db_ok {
        tracing::warn!(?db, "readiness: database unreachable");
    }
    if !eph_ok {
        tracing::warn!(?eph, "readiness: ephemeral store unreachable");
    }
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
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
