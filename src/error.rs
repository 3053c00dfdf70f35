//! The one place where errors become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// An RFC 6749 §5.2 error (and its relatives from RFC 6750, 7009, 8693, OIDC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    /// Set for `invalid_client` when the client tried HTTP Basic authentication.
    pub basic_challenge: bool,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self { code, description: description.into(), basic_challenge: false, retry_after: None }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", d)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new("rate_limited", "too many requests; retry later") }
    }

    pub fn with_basic_challenge(mut self) -> Self {
        self.basic_challenge = true;
        self
    }

    pub fn status(&self) -> StatusCode {
        match self.code {
            "invalid_client" | "invalid_token" => StatusCode::UNAUTHORIZED,
            "insufficient_scope" | "access_denied" => StatusCode::FORBIDDEN,
            "slow_down" | "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code, error_description: &self.description };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == "invalid_client" && self.basic_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sesame\""));
        }
        response
    }
}

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
        tracing::error!(error = %self, "request failed");
        let err = if unavailable {
            OAuthError::new("temporarily_unavailable", "the service is temporarily unavailable")
        } else {
            OAuthError::new("server_error", "the server could not complete the request")
        };
        err.into_response()
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
