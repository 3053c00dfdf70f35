//! Bearer-token protected resources of sesame itself (userinfo, the admin API): RFC 6750
//! token extraction and verification of our own access tokens (`error.rs` renders refusals).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use crate::crypto::verify::{verify_own_jwt, Expect};
pub use crate::error::BearerError;
use crate::tokens::access::{self, AccessTokenClaims};
use crate::oauth::form::parse_unique;
use crate::oauth::scope::Scopes;
use crate::state::AppState;

/// The bearer token of a request (RFC 6750 §2.1 header, or §2.2 form body on POST), taken by
/// axum so the endpoint code below never sees headers or raw bodies.
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequest<S> for BearerToken {
    type Rejection = BearerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| BearerError::InvalidRequest("unreadable request body"))?;
        Ok(Self(bearer(&parts.method, &parts.headers, &body)?))
    }
}

/// The bearer token of the `Authorization` header alone (RFC 6750 §2.1): for endpoints whose
/// body is their own (the admin API's JSON).
pub struct HeaderBearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for HeaderBearerToken {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(bearer(&Method::GET, &parts.headers, &[])?))
    }
}

/// The bearer token from exactly one place.
pub fn bearer(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<String, BearerError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
        .map(|v| v[7..].trim().to_string());
    // `Bearer` and blanks only (found by fuzzing): a malformed header, not an empty token.
    if from_header.as_deref() == Some("") {
        return Err(BearerError::InvalidRequest("the bearer token is empty"));
    }
    let is_form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = if *method == Method::POST && is_form {
        let form = parse_unique(body).map_err(|_| BearerError::InvalidRequest("malformed body"))?;
        // An empty value counts as missing, as in every OAuth form (found by fuzzing).
        form.get("access_token").filter(|t| !t.is_empty()).cloned()
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest("send the token in one place only")),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(BearerError::Missing),
    }
}

/// Verifies one of our access tokens: signature, issuer, type, expiry, revocation, and `scope`.
pub async fn authorize(state: &AppState, token: &str, required_scope: &'static str) -> Result<AccessTokenClaims, BearerError> {
    let verified = verify_own_jwt::<AccessTokenClaims>(&state.keys, token, state.config.issuer(), Expect::ACCESS_TOKEN, state.now())
        .map_err(|_| BearerError::InvalidToken("the access token is invalid or expired"))?;
    let claims = verified.claims;
    // A token minted for another resource server is not for sesame's own APIs (RFC 9068 §4).
    if !claims.aud.contains(state.config.issuer()) {
        return Err(BearerError::InvalidToken("the access token is not for this server"));
    }
    if access::is_denied(state, &claims).await? {
        return Err(BearerError::InvalidToken("the access token was revoked"));
    }
    if !Scopes::parse(&claims.scope).is_ok_and(|s| s.contains(required_scope)) {
        return Err(BearerError::InsufficientScope("the token lacks the required scope"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn with(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(name.clone(), value.parse().unwrap());
        }
        h
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    proptest! {
        /// RFC 6750 §2.1 and §2.2: the token comes back unchanged from the header (any scheme
        /// case) or from a POSTed form; sent in both places it is refused.
        #[test]
        fn a_token_is_taken_from_exactly_one_place(token in "[A-Za-z0-9._~+/-]{1,80}=*", scheme in "(?i:bearer)") {
            let header_only = with(&[(header::AUTHORIZATION, &format!("{scheme} {token}"))]);
            prop_assert_eq!(bearer(&Method::GET, &header_only, b"").ok(), Some(token.clone()));
            let body: String = form_urlencoded::Serializer::new(String::new()).append_pair("access_token", &token).finish();
            let form_only = with(&[(header::CONTENT_TYPE, FORM)]);
            prop_assert_eq!(bearer(&Method::POST, &form_only, body.as_bytes()).ok(), Some(token.clone()));
            prop_assert!(bearer(&Method::GET, &form_only, body.as_bytes()).is_err(), "a GET body is not a place for tokens");
            let both = with(&[(header::AUTHORIZATION, &format!("Bearer {token}")), (header::CONTENT_TYPE, FORM)]);
            prop_assert!(matches!(bearer(&Method::POST, &both, body.as_bytes()), Err(BearerError::InvalidRequest(_))));
        }

        #[test]
        fn an_empty_form_token_is_no_token(other in "[a-z]{1,8}=[a-z]{0,8}") {
            let h = with(&[(header::CONTENT_TYPE, FORM)]);
            let body = format!("access_token&{other}");
            prop_assume!(!other.starts_with("access_token="));
            prop_assert!(matches!(bearer(&Method::POST, &h, body.as_bytes()), Err(BearerError::Missing)));
        }

        #[test]
        fn a_blank_token_is_malformed(blanks in "[ \t]{1,5}") {
            let h = with(&[(header::AUTHORIZATION, &format!("Bearer {blanks}"))]);
            prop_assert!(matches!(bearer(&Method::GET, &h, b""), Err(BearerError::InvalidRequest(_))));
        }

        #[test]
        fn odd_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = bearer(&Method::POST, &with(&[(header::CONTENT_TYPE, FORM)]), &body);
        }
    }
}
