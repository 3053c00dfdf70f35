//! The discovery endpoints: the metadata documents of `metadata.rs`, as built at start.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use bytes::Bytes;

use crate::state::AppState;

fn json(body: Bytes) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        body,
    )
}

pub async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    json(state.discovery.openid.clone())
}

pub async fn oauth_authorization_server(State(state): State<AppState>) -> impl IntoResponse {
    json(state.discovery.oauth.clone())
}
