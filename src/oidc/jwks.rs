//! The JWKS endpoint, served from the key set's pre-serialized bytes.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn jwks(State(state): State<AppState>, request_headers: HeaderMap) -> Response {
    let set = state.keys.current();
    let cache = format!("public, max-age={}", state.config.keys.jwks_max_age.as_secs());
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache).unwrap_or(HeaderValue::from_static("no-cache")));
    if let Ok(etag) = HeaderValue::from_str(&set.jwks_etag) {
        headers.insert(header::ETAG, etag);
    }
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == set.jwks_etag || tag.trim() == "*"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    (headers, set.jwks.clone()).into_response()
}
