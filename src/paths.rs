//! Route paths: a leaf module, so handlers, discovery and redirects name the same path the
//! route table serves. Clients find endpoints through discovery; these are ours to change.

pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
pub const JWKS: &str = "/jwks.json";
pub const TOKEN: &str = "/token";
pub const AUTHORIZE: &str = "/authorize";
/// Where the login and consent pages send the browser back into the authorization flow.
pub const AUTHORIZE_RESUME: &str = "/authorize/resume";
pub const LOGIN: &str = "/login";
/// The second step of a sign-in: a code from an authenticator app, or a recovery code.
pub const LOGIN_FACTOR: &str = "/login/factor";
/// Setting up a first second factor during a sign-in that requires one.
pub const LOGIN_ENROL: &str = "/login/enrol";
/// A passkey as the second step: options for `navigator.credentials.get`, then the assertion.
pub const LOGIN_FACTOR_PASSKEY_BEGIN: &str = "/login/factor/passkey/begin";
pub const LOGIN_FACTOR_PASSKEY_FINISH: &str = "/login/factor/passkey/finish";
/// The signed-in user's passkeys (JSON), and registering one.
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
pub const ACCOUNT_PASSKEYS_BEGIN: &str = "/account/passkeys/begin";
pub const ACCOUNT_PASSKEYS_FINISH: &str = "/account/passkeys/finish";
pub const CONSENT: &str = "/consent";
/// The signed-in user's own page: their second factors, this session, sign-out.
pub const ACCOUNT: &str = "/account";
/// Starts setting up an authenticator app from the account page.
pub const ACCOUNT_TOTP: &str = "/account/totp";
pub const ACCOUNT_TOTP_CONFIRM: &str = "/account/totp/confirm";
pub const ACCOUNT_FACTOR_REMOVE: &str = "/account/factors/remove";
/// Replaces the recovery codes with ten new ones, shown once.
pub const ACCOUNT_RECOVERY_CODES: &str = "/account/recovery-codes";
pub const ACCOUNT_SIGN_OUT: &str = "/account/sign-out";
pub const USERINFO: &str = "/userinfo";
pub const END_SESSION: &str = "/logout";
pub const END_SESSION_CONFIRM: &str = "/logout/confirm";
pub const INTROSPECT: &str = "/introspect";
pub const REVOKE: &str = "/revoke";
pub const STYLESHEET: &str = "/static/sesame.css";
pub const FORM_POST_SCRIPT: &str = "/static/form_post.js";
/// The one script of the passkey buttons.
pub const PASSKEY_SCRIPT: &str = "/static/passkey.js";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const ADMIN_API_KEYS: &str = "/admin/api-keys";
pub const ADMIN_API_KEY_TEST: &str = "/admin/api-keys/test";
pub const ADMIN_API_KEY_REVOKE: &str = "/admin/api-keys/{id}/revoke";
pub const ADMIN_API_KEY_ROTATE: &str = "/admin/api-keys/{id}/rotate";
