//! Static assets, compiled into the binary so it runs from anywhere.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

const STYLESHEET: &str = include_str!("../../static/sesame.css");
const FORM_POST_SCRIPT: &str = include_str!("../../static/form_post.js");
const PASSKEY_SCRIPT: &str = include_str!("../../static/passkey.js");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn form_post_script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", FORM_POST_SCRIPT)
}

pub async fn passkey_script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", PASSKEY_SCRIPT)
}
