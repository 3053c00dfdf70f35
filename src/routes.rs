//! Every route in one table.

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use crate::{metrics, oauth, oidc, ops, ui};

pub mod paths {
    pub const JWKS: &str = "/jwks.json";
    pub const TOKEN: &str = "/token";
    pub const AUTHORIZE: &str = "/authorize";
    pub const USERINFO: &str = "/userinfo";
    pub const END_SESSION: &str = "/logout";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery::openid_configuration))
        .route("/.well-known/oauth-authorization-server", get(oidc::discovery::oauth_authorization_server))
        .route(paths::JWKS, get(oidc::jwks::jwks))
        .route(paths::TOKEN, post(oauth::token::token))
        .route(paths::INTROSPECT, post(oauth::introspect::introspect))
        .route(paths::REVOKE, post(oauth::revoke::revoke))
        .route(paths::AUTHORIZE, get(oauth::authorize::authorize_get).post(oauth::authorize::authorize_post))
        .route("/authorize/resume", get(oauth::authorize::resume))
        .route("/login", get(ui::login::show).post(ui::login::submit))
        .route("/consent", get(ui::consent::show).post(ui::consent::submit))
        .route(paths::USERINFO, get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo))
        .route(paths::END_SESSION, get(oidc::end_session::end_session_get).post(oidc::end_session::end_session_post))
        .route("/logout/confirm", post(oidc::end_session::confirm))
        .route("/static/sesame.css", get(ui::assets::stylesheet))
        .route("/static/form_post.js", get(ui::assets::form_post_script))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::admin::http::routes())
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state)
}

