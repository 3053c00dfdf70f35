//! HTML pages: askama templates, always served with the security headers.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// No inline script or style, no framing, no referrer, no caching. `connect-src 'self'`: the
/// passkey script talks to its own server (fetch), to no other.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn security_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// Renders a page with `status`; a template failure is logged and answered with a bare 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    let mut response = match page.render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    };
    security_headers(&mut response);
    response
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// Whether the server can check passkeys (passwordless sign-in offered).
    pub passkeys: bool,
    /// "Continue with ..." links, one per upstream provider.
    pub providers: Vec<ProviderLink<'a>>,
    /// `login.password_form`: off, only the providers are offered.
    pub password_form: bool,
}

pub struct ProviderLink<'a> {
    pub href: String,
    pub display_name: &'a str,
}

#[derive(Template)]
#[template(path = "login_factor.html")]
pub struct FactorPage<'a> {
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    /// Whether to offer the passkey button (the user has a passkey, the server is a relying party).
    pub passkey: bool,
}

#[derive(Template)]
#[template(path = "login_enrol.html")]
pub struct EnrolPage<'a> {
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub factor_id: &'a str,
    pub secret: &'a str,
    pub otpauth_uri: &'a str,
    /// Our own SVG markup (the QR code of `otpauth_uri`), inserted as is.
    pub qr_svg: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    pub codes: &'a [String],
    pub continue_to: &'a str,
}

/// A factor as the account page lists it.
pub struct FactorRow<'a> {
    pub id: &'a str,
    pub kind: &'static str,
    pub name: &'a str,
    pub confirmed: bool,
    pub added: String,
    /// "never" until the factor is first used.
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub username: &'a str,
    pub name: Option<&'a str>,
    pub csrf: &'a str,
    pub factors: Vec<FactorRow<'a>>,
    pub has_factor: bool,
    pub recovery_codes_left: i64,
    /// Whether this session may change the factors (see `mfa::may_change_factors`).
    pub may_change: bool,
    /// Whether this server can register passkeys (an issuer with a domain name).
    pub passkeys: bool,
    /// The user's live sessions, this one among them.
    pub sessions: Vec<SessionRow>,
}

/// One of the user's live sessions as the account page lists it.
pub struct SessionRow {
    pub id: String,
    /// This browser's session.
    pub current: bool,
    /// The browser's user agent, as it said.
    pub device: String,
    pub ip: Option<String>,
    pub signed_in_at: String,
    pub methods: String,
    pub last_seen: String,
    /// The names of the applications that received tokens in it.
    pub applications: String,
}

#[derive(Template)]
#[template(path = "account_totp.html")]
pub struct AccountTotpPage<'a> {
    pub csrf: &'a str,
    pub factor_id: &'a str,
    pub secret: &'a str,
    pub otpauth_uri: &'a str,
    /// Our own SVG markup (the QR code of `otpauth_uri`), inserted as is.
    pub qr_svg: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    /// (scope, what it grants)
    pub scopes: Vec<(&'a str, &'static str)>,
    /// For a device approval: the code the device should show, to compare.
    pub user_code: Option<&'a str>,
}

/// The device verification page: the form with input `user_code`.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub user_code: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The error page for requests that cannot be sent back to a client (400).
pub fn error_page(title: &str, message: &str) -> Response {
    render(StatusCode::BAD_REQUEST, &ErrorPage { title, message })
}

pub fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "confirm who you are",
        "profile" => "see your name and username",
        "email" => "see your email address",
        "offline_access" => "stay connected while you are away",
        "groups" => "see the groups you belong to",
        _ => "access this part of your account",
    }
}
