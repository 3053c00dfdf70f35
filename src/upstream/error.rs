//! Why a sign-in through a provider failed: a reason for the audit log and metrics, detail for
//! the server log, and a message for the person that says what happened without repeating what
//! the provider (or an attacker posing as it) sent.

use axum::http::StatusCode;
use axum::response::Response;

use crate::error::AppError;
use crate::ui::pages::{render, ErrorPage};

#[derive(Debug)]
pub enum UpstreamError {
    /// The provider could not be reached, or its discovery document or keys were unusable.
    Unreachable(String),
    /// What the provider sent failed a check: a bad ID token, a failed token request, a
    /// response for another issuer.
    Invalid { reason: &'static str, detail: String },
    /// The provider answered the authorization request with an error (`access_denied`, ...).
    Declined(String),
    /// The person may not sign in here (an email domain, no account, ...).
    Refused { reason: &'static str, message: String },
    /// The callback is unknown, used already, expired, or came to another browser.
    Stale(&'static str),
    /// Our own stores failed: not the provider's doing, answered as any store failure.
    Store(AppError),
}

impl From<AppError> for UpstreamError {
    fn from(e: AppError) -> Self {
        Self::Store(e)
    }
}

impl From<crate::store::StoreError> for UpstreamError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Store(e.into())
    }
}

impl UpstreamError {
    pub fn invalid(reason: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Invalid { reason, detail: detail.to_string() }
    }

    pub fn refused(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Refused { reason, message: message.into() }
    }

    /// For the audit log and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "provider_unreachable",
            Self::Invalid { reason, .. } | Self::Refused { reason, .. } => reason,
            Self::Declined(_) => "provider_declined",
            Self::Stale(reason) => reason,
            Self::Store(_) => "store_failure",
        }
    }

    /// For the server log: never a token or a secret, only what failed and why.
    pub fn detail(&self) -> String {
        match self {
            Self::Unreachable(d) | Self::Invalid { detail: d, .. } => d.clone(),
            Self::Declined(code) => format!("the provider answered error={code}"),
            Self::Refused { message, .. } => message.clone(),
            Self::Stale(reason) => reason.to_string(),
            Self::Store(e) => e.to_string(),
        }
    }

    /// The HTML error page; a store failure is the caller's to answer (503 and the like).
    pub fn page(&self, provider: &str) -> Response {
        let (status, title, message) = match self {
            Self::Unreachable(_) => (StatusCode::BAD_GATEWAY, "Sign-in unavailable", format!("{provider} cannot be reached right now. Try again in a moment.")),
            Self::Invalid { .. } => (
                StatusCode::BAD_GATEWAY,
                "Sign-in failed",
                format!("The answer from {provider} could not be accepted, so you were not signed in. Go back to the application and try again; if it keeps happening, tell your administrator."),
            ),
            Self::Declined(code) => (StatusCode::FORBIDDEN, "Sign-in cancelled", format!("{provider} did not sign you in ({code}).")),
            Self::Refused { message, .. } => (StatusCode::FORBIDDEN, "Sign-in refused", message.clone()),
            Self::Stale(_) => (
                StatusCode::BAD_REQUEST,
                "Start again",
                "This sign-in was already completed, took too long, or was started in another browser. Go back to the application and sign in again.".to_string(),
            ),
            Self::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "Try again", "Sign-in is unavailable for a moment. Try again.".to_string()),
        };
        render(status, &ErrorPage { title, message: &message })
    }
}

/// An OAuth error code as a provider may send it (`error=`), kept only when it has the
/// characters RFC 6749 allows there and a sane length; otherwise a placeholder.
pub fn error_code(raw: &str) -> String {
    let legal = !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    if legal { raw.to_string() } else { "an unreadable error".to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_error_codes_are_repeated() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>\"x\""), "an unreadable error");
        assert_eq!(error_code(&"a".repeat(65)), "an unreadable error");
        assert_eq!(error_code(""), "an unreadable error");
    }
}
