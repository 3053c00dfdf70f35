//! OpenID Provider metadata (OIDC Discovery) and OAuth server metadata (RFC 8414), built once
//! from the configuration the server enforces and served as pre-serialized bytes.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Serialize;

use crate::config::{Config, SIGNING_ALGS};
use crate::oauth::token::GRANT_TYPES_SUPPORTED;
use crate::routes::paths;
use crate::state::AppState;

pub struct Discovery {
    openid: Bytes,
    oauth: Bytes,
}

#[derive(Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    jwks_uri: String,
    scopes_supported: Vec<&'static str>,
    claims_supported: Vec<&'static str>,
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    grant_types_supported: &'static [&'static str],
    token_endpoint_auth_methods_supported: &'static [&'static str],
}

/// Client authentication methods the token endpoint accepts.
pub const TOKEN_ENDPOINT_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

impl Discovery {
    pub fn build(config: &Config) -> Self {
        let metadata = Metadata {
            issuer: config.issuer(),
            jwks_uri: config.endpoint(paths::JWKS),
            scopes_supported: vec!["openid", "profile", "email", "offline_access"],
            claims_supported: vec!["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: SIGNING_ALGS,
            authorization_endpoint: None,
            token_endpoint: config.endpoint(paths::TOKEN),
            grant_types_supported: &GRANT_TYPES_SUPPORTED,
            token_endpoint_auth_methods_supported: &TOKEN_ENDPOINT_AUTH_METHODS,
        };
        let openid = serde_json::to_vec(&metadata).unwrap_or_default();
        // The RFC 8414 document describes the same server; it is the same metadata.
        let oauth = openid.clone();
        Self { openid: Bytes::from(openid), oauth: Bytes::from(oauth) }
    }
}

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
