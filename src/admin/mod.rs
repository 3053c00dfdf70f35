//! Administrative operations shared by the CLI (and any admin API): validation lives here,
//! not in the front ends.

pub mod api_keys;
pub mod clients;
pub mod http;
pub mod http_clients;
pub mod http_sessions;
pub mod roles;
pub mod sessions;
pub mod users;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Password(#[from] crate::crypto::password::PasswordError),
    /// A failure of sesame itself (the key set, say); logged, never shown.
    #[error("{0}")]
    Internal(String),
}


/// The audit event of an administrative change by `actor` (`cli`, a client id, `user:SUB`); the
/// store writes it in the transaction of the change itself.
pub(crate) fn audit_event(kind: &str, subject: &str, actor: &str, now: crate::clock::UnixTime, details: serde_json::Value) -> crate::store::AuditEvent {
    crate::store::AuditEvent {
        id: 0,
        at: now,
        kind: kind.to_string(),
        subject: subject.to_string(),
        caller: Some(actor.to_string()),
        result: "ok".into(),
        reason: None,
        details,
    }
}

/// An absolute URI a browser may be sent to: https, or http on a loopback host, or a
/// private-use scheme (`com.example.app:/cb`, RFC 8252) for native apps; never a fragment.
pub fn validate_redirect_uri(uri: &str) -> Result<(), AdminError> {
    let bad = |why: &str| AdminError::Invalid(format!("redirect URI `{uri}` {why}"));
    let url = url::Url::parse(uri).map_err(|_| bad("is not an absolute URI"))?;
    if url.fragment().is_some() {
        return Err(bad("must not contain a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err(bad("must use https (http only on a loopback host)")),
        },
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(bad("must use https, http on loopback, or a private-use scheme like com.example.app")),
    }
}

impl From<crate::oauth::scope::ScopeError> for AdminError {
    fn from(e: crate::oauth::scope::ScopeError) -> Self {
        Self::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in ["https://app.example.com/cb", "http://127.0.0.1:9000/cb", "http://localhost/cb", "com.example.app:/cb"] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in ["/cb", "http://app.example.com/cb", "https://app.example.com/cb#x", "javascript:alert(1)"] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

}
