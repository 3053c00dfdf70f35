//! The one place where errors become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::AdminError;
use crate::mfa::MfaError;
use crate::oauth::scope::{NarrowError, ScopeError};
use crate::ui::pages::{render, ErrorPage};
use crate::store::StoreError;

/// The one description every failed client authentication gets: which clients exist, and how
/// they authenticate, is not for an unauthenticated caller to learn.
pub const CLIENT_AUTH_FAILED: &str = "client authentication failed";

/// The error codes sesame answers with (RFC 6749 §4.1.2.1 and §5.2, RFC 8707, RFC 8628 §3.5,
/// OIDC Core §3.1.2.6), each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    /// RFC 8628 §3.5: the user has not answered yet; poll again after the interval.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval grows by five seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired before the user answered.
    ExpiredToken,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    /// RFC 9449 §5: the DPoP proof is missing where required, or refused.
    InvalidDpopProof,
    /// RFC 9449 §8: retry with the nonce in the `DPoP-Nonce` header.
    UseDpopNonce,
    /// Not an RFC code: an API key over its per-minute limit (429, with Retry-After).
    RateLimited,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 6749 §5.2 error (and its relatives from RFC 6750, 7009, 8693, OIDC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Set for `invalid_client` when the client tried HTTP Basic authentication.
    pub basic_challenge: bool,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
    /// A server nonce for the client's next DPoP proof (`DPoP-Nonce`, RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), basic_challenge: false, retry_after: None, dpop_nonce: None }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, d)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(ErrorCode::RateLimited, "too many requests; retry later") }
    }

    /// The DPoP refusals of the token and PAR endpoints.
    pub fn from_dpop(e: crate::dpop::DpopError) -> EndpointError {
        match e {
            crate::dpop::DpopError::Invalid(d) => Self::new(ErrorCode::InvalidDpopProof, d).into(),
            crate::dpop::DpopError::UseNonce(nonce) => {
                Self { dpop_nonce: Some(nonce), ..Self::new(ErrorCode::UseDpopNonce, "the DPoP proof must carry the server's nonce") }.into()
            }
            crate::dpop::DpopError::App(e) => e.into(),
        }
    }

    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> Self {
        self.dpop_nonce = nonce;
        self
    }

    pub fn with_basic_challenge(mut self) -> Self {
        self.basic_challenge = true;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code.as_str(), error_description: &self.description };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(v) = self.dpop_nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            headers.insert(DPOP_NONCE, v);
        }
        if self.code == ErrorCode::InvalidClient && self.basic_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sesame\""));
        }
        response
    }
}

/// RFC 9449 §8: the nonce the client's next DPoP proof must carry.
pub const DPOP_NONCE: &str = "dpop-nonce";

/// `Cache-Control: no-store` and `Pragma: no-cache`, for anything carrying tokens or errors.
pub fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A failure of sesame itself (a store, the key set), never the caller's fault.
/// Its detail is logged; the response says only that the server failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let unavailable = matches!(self, AppError::Store(StoreError::Unavailable(_)));
        // An outage is logged once, by the store's circuit breaker, not once per request.
        if unavailable {
            tracing::debug!(error = %self, "request failed: store unavailable");
        } else {
            tracing::error!(error = %self, "request failed");
        }
        if unavailable {
            let mut response = OAuthError::new(ErrorCode::TemporarilyUnavailable, "the service is temporarily unavailable").into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        OAuthError::new(ErrorCode::ServerError, "the server could not complete the request").into_response()
    }
}

/// An MFA operation's failure that no page answers on its own (a store, a secret that does not
/// open): ours, never the caller's fault.
pub fn mfa_failure(e: MfaError) -> AppError {
    match e {
        MfaError::Store(s) => AppError::Store(s),
        other => AppError::Internal(other.to_string()),
    }
}

/// Our failure on a route a browser shows (authorize, login, consent, logout): the HTML error
/// page, never OAuth JSON; logged with its detail, answered 503 (unavailable) or 500.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self(AppError::Store(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let unavailable = matches!(self.0, AppError::Store(StoreError::Unavailable(_)));
        if unavailable {
            tracing::debug!(error = %self.0, "page failed: store unavailable");
        } else {
            tracing::error!(error = %self.0, "page failed");
        }
        let (status, page) = if unavailable {
            (StatusCode::SERVICE_UNAVAILABLE, ErrorPage { title: "Temporarily unavailable", message: "Sign-in is briefly unavailable. Try again in a moment." })
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorPage { title: "Something went wrong", message: "The server could not complete the request. Try again." })
        };
        let mut response = render(status, &page);
        if unavailable {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// What an OAuth endpoint handler returns on failure: the caller's fault, or ours.
#[derive(Debug)]
pub enum EndpointError {
    OAuth(OAuthError),
    App(AppError),
}

impl From<OAuthError> for EndpointError {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}
impl From<AppError> for EndpointError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}
impl From<NarrowError> for EndpointError {
    fn from(e: NarrowError) -> Self {
        Self::OAuth(e.into())
    }
}
impl From<StoreError> for EndpointError {
    fn from(e: StoreError) -> Self {
        Self::App(AppError::Store(e))
    }
}

impl IntoResponse for EndpointError {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(e) => e.into_response(),
            Self::App(e) => e.into_response(),
        }
    }
}

/// A refusal at an endpoint that takes bearer tokens (userinfo, the admin API), per RFC 6750 §3:
/// the challenge is data here and rendered once, below.
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: 401 with a bare challenge (RFC 6750 §3.1 gives no error code then).
    Missing,
    /// 400 `invalid_request`: the token was sent in two places, or the body is malformed.
    InvalidRequest(&'static str),
    /// 401 `invalid_token`: bad signature, expired, revoked, or its user is gone.
    InvalidToken(&'static str),
    /// 401 `invalid_token` with a DPoP challenge (RFC 9449 §7.1): a DPoP-bound token sent as a
    /// bearer token, a bound token with another key's proof, or an unbound one sent as DPoP.
    DpopBoundToken(&'static str),
    /// 401 `invalid_dpop_proof` with a DPoP challenge; the description is one of our own texts.
    InvalidDpopProof(String),
    /// 403 `insufficient_scope`.
    InsufficientScope(&'static str),
    /// Our failure, not the caller's.
    App(AppError),
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        Self::App(AppError::Store(e))
    }
}

impl From<AppError> for BearerError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let dpop_algs = crate::dpop::DPOP_ALGS.join(" ");
        let (status, code, description, dpop) = match &self {
            Self::Missing => (StatusCode::UNAUTHORIZED, None, "a bearer token is required", false),
            Self::InvalidRequest(d) => (StatusCode::BAD_REQUEST, Some("invalid_request"), *d, false),
            Self::InvalidToken(d) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), *d, false),
            Self::DpopBoundToken(d) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), *d, true),
            Self::InvalidDpopProof(d) => (StatusCode::UNAUTHORIZED, Some("invalid_dpop_proof"), d.as_str(), true),
            Self::InsufficientScope(d) => (StatusCode::FORBIDDEN, Some("insufficient_scope"), *d, false),
            Self::App(_) => (StatusCode::INTERNAL_SERVER_ERROR, None, "", false),
        };
        if let Self::App(e) = self {
            return e.into_response();
        }
        // Descriptions are our own fixed texts: nothing a caller sent reaches the header.
        let challenge = match (code, dpop) {
            (Some(code), false) => format!("Bearer realm=\"sesame\", error=\"{code}\", error_description=\"{description}\""),
            (Some(code), true) => format!("DPoP algs=\"{dpop_algs}\", error=\"{code}\", error_description=\"{description}\""),
            (None, _) => "Bearer realm=\"sesame\"".to_string(),
        };
        let body = ErrorBody { error: code.unwrap_or("invalid_request"), error_description: description };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        // Both schemes are accepted: a request without a token hears of DPoP too (RFC 9449 §7.1).
        if code.is_none() {
            if let Ok(v) = HeaderValue::from_str(&format!("DPoP algs=\"{dpop_algs}\"")) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
        no_store(headers);
        response
    }
}

/// The admin API's answers on failure: JSON like the OAuth errors; validation messages are
/// ours to show, store failures are logged and answered 503 or 500 without their text.
#[derive(Debug)]
pub enum AdminApiError {
    Bearer(BearerError),
    Admin(AdminError),
    /// A request the extractors refused: malformed JSON, a field of the wrong type or unknown,
    /// an oversized body, an undecodable path. Answered `invalid_request` with serde's account.
    Rejected { status: StatusCode, description: String },
}

impl From<axum::extract::rejection::JsonRejection> for AdminApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let description = format!("the request body is larger than {} bytes", crate::routes::MAX_BODY_BYTES);
            return Self::Rejected { status: StatusCode::PAYLOAD_TOO_LARGE, description };
        }
        // A missing Content-Type is 415 to axum; to an admin it is one more malformed request.
        Self::Rejected { status: StatusCode::BAD_REQUEST, description: e.body_text() }
    }
}

impl From<axum::extract::rejection::QueryRejection> for AdminApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::Rejected { status: StatusCode::BAD_REQUEST, description: e.body_text() }
    }
}

impl From<axum::extract::rejection::PathRejection> for AdminApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        Self::Rejected { status: StatusCode::BAD_REQUEST, description: e.body_text() }
    }
}

impl From<BearerError> for AdminApiError {
    fn from(e: BearerError) -> Self {
        Self::Bearer(e)
    }
}

impl From<ScopeError> for OAuthError {
    fn from(e: ScopeError) -> Self {
        Self::invalid_scope(e.to_string())
    }
}

impl From<NarrowError> for OAuthError {
    fn from(e: NarrowError) -> Self {
        Self::invalid_scope(e.to_string())
    }
}

impl From<AppError> for AdminError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Store(s) => Self::Store(s),
            AppError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<AdminError> for AdminApiError {
    fn from(e: AdminError) -> Self {
        Self::Admin(e)
    }
}

impl IntoResponse for AdminApiError {
    fn into_response(self) -> Response {
        let e = match self {
            Self::Bearer(e) => return e.into_response(),
            Self::Admin(e) => e,
            Self::Rejected { status, description } => {
                let mut response = (status, axum::Json(ErrorBody { error: "invalid_request", error_description: &description })).into_response();
                no_store(response.headers_mut());
                return response;
            }
        };
        let (status, code) = match &e {
            AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AdminError::Store(_) | AdminError::Password(_) | AdminError::Internal(_) => {
                let app = match e {
                    AdminError::Store(s) => AppError::Store(s),
                    other => AppError::Internal(other.to_string()),
                };
                return app.into_response();
            }
        };
        let description = e.to_string();
        let mut response = (status, axum::Json(ErrorBody { error: code, error_description: &description })).into_response();
        no_store(response.headers_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(r: Response) -> (StatusCode, String, Option<String>) {
        let status = r.status();
        let challenge = r.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), challenge)
    }

    #[tokio::test]
    async fn store_failures_are_503_or_500_and_never_show_their_text() {
        let secret = "connection to 10.1.2.3:5432 refused (password=hunter2)";
        for (err, status) in [
            (AdminApiError::Admin(AdminError::Store(StoreError::Unavailable(secret.into()))), StatusCode::SERVICE_UNAVAILABLE),
            (AdminApiError::Admin(AdminError::Store(StoreError::Other(secret.into()))), StatusCode::INTERNAL_SERVER_ERROR),
            (AdminApiError::Admin(AdminError::Internal(secret.into())), StatusCode::INTERNAL_SERVER_ERROR),
            (AdminApiError::Bearer(BearerError::from(StoreError::Unavailable(secret.into()))), StatusCode::SERVICE_UNAVAILABLE),
        ] {
            let (got, body, _) = parts(err.into_response()).await;
            assert_eq!(got, status);
            assert!(!body.contains("10.1.2.3") && !body.contains("hunter2"), "{body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(matches!(json["error"].as_str(), Some("temporarily_unavailable" | "server_error")));
        }
    }

    #[tokio::test]
    async fn bearer_refusals_carry_their_rfc_6750_challenge() {
        let (status, _, challenge) = parts(BearerError::Missing.into_response()).await;
        assert_eq!((status, challenge.as_deref()), (StatusCode::UNAUTHORIZED, Some("Bearer realm=\"sesame\"")));
        let (status, body, challenge) = parts(BearerError::InsufficientScope("needs x").into_response()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(challenge.unwrap().contains("error=\"insufficient_scope\""));
        assert!(body.contains("\"error\":\"insufficient_scope\""));
        let (status, _, challenge) = parts(BearerError::InvalidRequest("two places").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(challenge.unwrap().contains("error=\"invalid_request\""));
    }

    #[tokio::test]
    async fn browser_routes_get_the_html_error_page_never_oauth_json() {
        for (err, status) in [
            (StoreError::Unavailable("redis at 10.9.9.9 refused".into()), StatusCode::SERVICE_UNAVAILABLE),
            (StoreError::Other("syntax error near SELECT".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            let r = PageError::from(err).into_response();
            assert_eq!(r.status(), status);
            assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
            assert!(r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
            let (_, body, _) = parts(r).await;
            assert!(body.contains("<html") && !body.trim_start().starts_with('{') && !body.contains("10.9.9.9") && !body.contains("SELECT"), "{body}");
        }
    }

    #[tokio::test]
    async fn validation_messages_are_shown_to_admins() {
        let (status, body, _) = parts(AdminApiError::Admin(AdminError::Invalid("rate-limit must be at least 1".into())).into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("rate-limit must be at least 1"));
        let (status, _, _) = parts(AdminApiError::Admin(AdminError::NotFound("API key x".into())).into_response()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
