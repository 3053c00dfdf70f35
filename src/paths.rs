//! Route paths: a leaf module, so handlers, discovery and redirects name the same path the
//! route table serves. Clients find endpoints through discovery; these are ours to change.

pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
pub const JWKS: &str = "/jwks.json";
pub const TOKEN: &str = "/token";
pub const AUTHORIZE: &str = "/authorize";
/// Pushed authorization requests (RFC 9126).
pub const PAR: &str = "/par";
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
/// Passwordless sign-in from the login page with a discoverable passkey.
pub const LOGIN_PASSKEY_BEGIN: &str = "/login/passkey/begin";
pub const LOGIN_PASSKEY_FINISH: &str = "/login/passkey/finish";
/// The signed-in user's passkeys (JSON), and registering one.
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
pub const ACCOUNT_PASSKEYS_BEGIN: &str = "/account/passkeys/begin";
pub const ACCOUNT_PASSKEYS_FINISH: &str = "/account/passkeys/finish";
/// Leaves for an upstream identity provider (`?req=`), and where it sends the browser back.
pub const UPSTREAM_START: &str = "/login/upstream/{provider}";
pub const UPSTREAM_CALLBACK: &str = "/login/upstream/{provider}/callback";
pub const CONSENT: &str = "/consent";
/// RFC 8628: where a device asks for a device code and a user code.
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
/// The verification page (`verification_uri`): the user types the code their device shows.
pub const DEVICE: &str = "/device";
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
/// Registered clients: list (GET) and register (POST).
pub const ADMIN_CLIENTS: &str = "/admin/clients";
/// One client: show (GET) and remove (DELETE).
pub const ADMIN_CLIENT: &str = "/admin/clients/{id}";
pub const ADMIN_CLIENT_ROTATE_SECRET: &str = "/admin/clients/{id}/rotate-secret";
pub const ADMIN_API_KEYS: &str = "/admin/api-keys";
pub const ADMIN_API_KEY_TEST: &str = "/admin/api-keys/test";
pub const ADMIN_API_KEY_REVOKE: &str = "/admin/api-keys/{id}/revoke";
pub const ADMIN_API_KEY_ROTATE: &str = "/admin/api-keys/{id}/rotate";
pub const ADMIN_API_KEY_USAGE: &str = "/admin/api-keys/{id}/usage";
/// Live SSO sessions (`?user=USERNAME` for one user's).
pub const ADMIN_SESSIONS: &str = "/admin/sessions";
pub const ADMIN_SESSION_END: &str = "/admin/sessions/{id}/end";
pub const ADMIN_USER_SESSIONS_END: &str = "/admin/users/{username}/sessions/end";
/// Ends another of the signed-in user's sessions.
pub const ACCOUNT_SESSION_END: &str = "/account/sessions/end";

pub fn upstream_start(provider_id: &str) -> String {
    UPSTREAM_START.replace("{provider}", provider_id)
}

pub fn upstream_callback(provider_id: &str) -> String {
    UPSTREAM_CALLBACK.replace("{provider}", provider_id)
}
