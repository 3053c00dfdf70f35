//! Every route in one table.

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use crate::{metrics, oauth, oidc, ops};

pub mod paths {
    pub const JWKS: &str = "/jwks.json";
    pub const TOKEN: &str = "/token";
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery::openid_configuration))
        .route("/.well-known/oauth-authorization-server", get(oidc::discovery::oauth_authorization_server))
        .route(paths::JWKS, get(oidc::jwks::jwks))
        .route(paths::TOKEN, post(oauth::token::token))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state)
}
