//! Every route in one table.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::paths::*;
use crate::state::AppState;
use crate::{admin, lifecycle, metrics, oauth, oidc, ops, ui};

/// The largest request body any route reads (413 beyond it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route(OPENID_CONFIGURATION, get(oidc::discovery::openid_configuration))
        .route(OAUTH_AUTHORIZATION_SERVER, get(oidc::discovery::oauth_authorization_server))
        .route(JWKS, get(oidc::jwks::jwks))
        .route(TOKEN, post(oauth::token::token))
        .route(DEVICE_AUTHORIZATION, post(oauth::device::endpoint::device_authorization))
        .route(DEVICE, get(ui::device::show).post(ui::device::submit))
        .route(INTROSPECT, post(oauth::introspect::introspect))
        .route(REVOKE, post(oauth::revoke::revoke))
        .route(AUTHORIZE, get(oauth::authorize::authorize_get).post(oauth::authorize::authorize_post))
        .route(PAR, post(oauth::par::push))
        .route(AUTHORIZE_RESUME, get(oauth::authorize::resume))
        .route(LOGIN, get(ui::login::show).post(ui::login::submit))
        .route(UPSTREAM_START, get(ui::upstream::start))
        .route(UPSTREAM_CALLBACK, get(ui::upstream::callback))
        .route(LOGIN_FACTOR, get(ui::second_factor::show).post(ui::second_factor::submit))
        .route(LOGIN_FACTOR_PASSKEY_BEGIN, post(ui::passkeys::sign_in_begin))
        .route(LOGIN_FACTOR_PASSKEY_FINISH, post(ui::passkeys::sign_in_finish))
        .route(LOGIN_PASSKEY_BEGIN, post(ui::passkeys::passwordless_begin))
        .route(LOGIN_PASSKEY_FINISH, post(ui::passkeys::passwordless_finish))
        .route(ACCOUNT_PASSKEYS, get(ui::passkeys::list))
        .route(ACCOUNT_PASSKEYS_BEGIN, post(ui::passkeys::register_begin))
        .route(ACCOUNT_PASSKEYS_FINISH, post(ui::passkeys::register_finish))
        .route(LOGIN_ENROL, get(ui::second_factor::show_enrol).post(ui::second_factor::submit_enrol))
        .route(CONSENT, get(ui::consent::show).post(ui::consent::submit))
        .route(ACCOUNT, get(ui::account::show))
        .route(ACCOUNT_TOTP, post(ui::account::factors::start_totp))
        .route(ACCOUNT_TOTP_CONFIRM, post(ui::account::factors::confirm_totp))
        .route(ACCOUNT_FACTOR_REMOVE, post(ui::account::factors::remove))
        .route(ACCOUNT_RECOVERY_CODES, post(ui::account::factors::regenerate_recovery_codes))
        .route(ACCOUNT_SIGN_OUT, post(ui::account::sign_out))
        .route(ACCOUNT_SESSION_END, post(ui::account::sessions::end_other))
        .route(USERINFO, get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo))
        .route(END_SESSION, get(oidc::end_session::end_session_get).post(oidc::end_session::end_session_post))
        .route(END_SESSION_CONFIRM, post(oidc::end_session::confirm))
        .route(STYLESHEET, get(ui::assets::stylesheet))
        .route(FORM_POST_SCRIPT, get(ui::assets::form_post_script))
        .route(PASSKEY_SCRIPT, get(ui::assets::passkey_script))
        .route(HEALTHZ, get(ops::healthz))
        .route(READYZ, get(ops::readyz))
        .route(METRICS, get(ops::metrics))
        .route(ADMIN_CLIENTS, get(admin::http_clients::list).post(admin::http_clients::add))
        .route(ADMIN_CLIENT, get(admin::http_clients::show).delete(admin::http_clients::remove))
        .route(ADMIN_CLIENT_ROTATE_SECRET, post(admin::http_clients::rotate_secret))
        .route(ADMIN_API_KEYS, get(admin::http::list).post(admin::http::generate))
        .route(ADMIN_API_KEY_TEST, post(admin::http::test))
        .route(ADMIN_API_KEY_REVOKE, post(admin::http::revoke))
        .route(ADMIN_API_KEY_ROTATE, post(admin::http::rotate))
        .route(ADMIN_API_KEY_USAGE, get(admin::http::usage))
        .route(ADMIN_SESSIONS, get(admin::http_sessions::list))
        .route(ADMIN_SESSION_END, post(admin::http_sessions::end))
        .route(ADMIN_USER_SESSIONS_END, post(admin::http_sessions::end_all_of_user))
        // No endpoint takes more: form bodies, assertions and admin JSON fit with room to spare.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.lifecycle.clone(), lifecycle::track))
        .with_state(state)
}
