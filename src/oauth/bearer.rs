//! Bearer-token protected resources of sesame itself (userinfo, the admin API): RFC 6750
//! token extraction and verification of our own access tokens (`error.rs` renders refusals).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use subtle::ConstantTimeEq;

use crate::crypto::verify::{verify_own_jwt, Expect};
use crate::dpop::{self, DpopError, DpopHeader, ProofRequest};
pub use crate::error::BearerError;
use crate::tokens::access::{self, AccessTokenClaims};
use crate::oauth::form::parse_unique;
use crate::oauth::scope::Scopes;
use crate::state::AppState;

/// How the client presented its access token: as a bearer token (RFC 6750) or with the DPoP
/// scheme and a proof of its key (RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// An access token as a resource request presented it: the token, its scheme, the `DPoP`
/// header, and the request's method and path (what a proof must name). Taken by axum so the
/// endpoint code never sees headers or raw bodies.
#[derive(Debug, Clone)]
pub struct PresentedToken {
    pub token: String,
    pub scheme: Scheme,
    pub proof: DpopHeader,
    pub method: Method,
    pub path: String,
    /// The client certificate of the request's connection (or of a trusted proxy's header).
    pub certificate: Option<crate::tls::ClientCertificate>,
}

/// The access token of a request: the `Authorization` header, or for bearer tokens the form
/// body of a POST (RFC 6750 §2.2).
pub struct BearerToken(pub PresentedToken);

impl FromRequest<AppState> for BearerToken {
    type Rejection = BearerError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| BearerError::InvalidRequest("unreadable request body"))?;
        let (token, scheme) = presented(&parts.method, &parts.headers, &body)?;
        let certificate = crate::tls::presented_certificate(&parts, &state.config);
        Ok(Self(PresentedToken { token, scheme, proof: DpopHeader::of(&parts.headers), method: parts.method.clone(), path: parts.uri.path().to_string(), certificate }))
    }
}

/// The access token of the `Authorization` header alone (RFC 6750 §2.1): for endpoints whose
/// body is their own (the admin API's JSON).
pub struct HeaderBearerToken(pub PresentedToken);

impl FromRequestParts<AppState> for HeaderBearerToken {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (token, scheme) = presented(&Method::GET, &parts.headers, &[])?;
        let certificate = crate::tls::presented_certificate(parts, &state.config);
        Ok(Self(PresentedToken { token, scheme, proof: DpopHeader::of(&parts.headers), method: parts.method.clone(), path: parts.uri.path().to_string(), certificate }))
    }
}

/// The bearer token from exactly one place (a DPoP-scheme header is not a bearer token).
pub fn bearer(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<String, BearerError> {
    match presented(method, headers, body)? {
        (token, Scheme::Bearer) => Ok(token),
        (_, Scheme::Dpop) => Err(BearerError::Missing),
    }
}

/// The `Authorization` header's token after `scheme ` (any case), if that is its scheme.
fn with_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let n = scheme.len() + 1;
    (value.len() > n && value.is_char_boundary(n) && value[..scheme.len()].eq_ignore_ascii_case(scheme) && value.as_bytes()[scheme.len()] == b' ').then(|| value[n..].trim())
}

/// The access token and its scheme, from exactly one place.
pub fn presented(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<(String, Scheme), BearerError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let from_header = authorization.and_then(|v| {
        with_scheme(v, "bearer").map(|t| (t.to_string(), Scheme::Bearer)).or_else(|| with_scheme(v, "dpop").map(|t| (t.to_string(), Scheme::Dpop)))
    });
    // `Bearer` and blanks only (found by fuzzing): a malformed header, not an empty token.
    if from_header.as_ref().is_some_and(|(t, _)| t.is_empty()) {
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
        (Some(found), None) => Ok(found),
        (None, Some(t)) => Ok((t, Scheme::Bearer)),
        (None, None) => Err(BearerError::Missing),
    }
}

/// Verifies one of our access tokens: signature, issuer, type, expiry, revocation, its DPoP
/// binding (a bound token only with a proof of its key, RFC 9449 §7), and `scope`.
pub async fn authorize(state: &AppState, presented: &PresentedToken, required_scope: &'static str) -> Result<AccessTokenClaims, BearerError> {
    let token = presented.token.as_str();
    let verified = verify_own_jwt::<AccessTokenClaims>(&state.keys, token, state.config.issuer(), Expect::ACCESS_TOKEN, state.now())
        .map_err(|_| BearerError::InvalidToken("the access token is invalid or expired"))?;
    let claims = verified.claims;
    // A token minted for another resource server is not for sesame's own APIs (RFC 9068 §4).
    if !claims.aud.contains(state.config.issuer()) {
        return Err(BearerError::InvalidToken("the access token is not for this server"));
    }
    check_binding(state, presented, &claims).await?;
    if access::is_denied(state, &claims).await? {
        return Err(BearerError::InvalidToken("the access token was revoked"));
    }
    if !Scopes::parse(&claims.scope).is_ok_and(|s| s.contains(required_scope)) {
        return Err(BearerError::InsufficientScope("the token lacks the required scope"));
    }
    Ok(claims)
}

async fn check_binding(state: &AppState, presented: &PresentedToken, claims: &AccessTokenClaims) -> Result<(), BearerError> {
    // RFC 8705 §3: a certificate-bound token only over a connection with that certificate.
    if let Some(bound) = claims.certificate_thumbprint() {
        let presented_thumbprint = presented.certificate.as_ref().map(|c| c.thumbprint());
        if !presented_thumbprint.is_some_and(|t| bool::from(t.as_bytes().ct_eq(bound.as_bytes()))) {
            state.metrics.security_event("certificate_bound_token_without_its_certificate");
            return Err(BearerError::InvalidToken("this access token is bound to a client certificate this request did not present"));
        }
    }
    match (presented.scheme, claims.dpop_jkt()) {
        (Scheme::Bearer, None) => Ok(()),
        (Scheme::Bearer, Some(_)) => {
            state.metrics.security_event("dpop_bound_token_as_bearer");
            Err(BearerError::DpopBoundToken("this access token is bound to a DPoP key: present it with the DPoP scheme and a proof"))
        }
        (Scheme::Dpop, bound) => {
            let url = state.config.endpoint(&presented.path);
            let request = ProofRequest { method: presented.method.as_str(), url: &url, access_token: Some(&presented.token), nonce_required: false };
            let proof = match dpop::verify(&state.config, state.ephemeral.as_ref(), &presented.proof, &request, state.now()).await {
                Ok(p) => p,
                Err(DpopError::Invalid(why)) => return Err(BearerError::InvalidDpopProof(why)),
                Err(DpopError::UseNonce(_)) => return Err(BearerError::InvalidDpopProof("the DPoP proof needs a nonce".into())),
                Err(DpopError::App(e)) => return Err(BearerError::App(e)),
            };
            match bound {
                None => Err(BearerError::DpopBoundToken("this access token is not bound to a DPoP key: present it as a bearer token")),
                Some(jkt) if bool::from(jkt.as_bytes().ct_eq(proof.jkt.as_bytes())) => Ok(()),
                Some(_) => {
                    state.metrics.security_event("dpop_key_mismatch");
                    Err(BearerError::DpopBoundToken("the DPoP proof is signed by another key than the token is bound to"))
                }
            }
        }
    }
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
