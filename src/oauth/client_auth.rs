//! Client authentication (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2), one method per request:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt`, `tls_client_auth`,
//! `self_signed_tls_client_auth`, or `none` for public clients. A client must use the method it
//! registered.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::form::OAuthForm;
use crate::crypto::secrets::secret_matches;
use crate::error::{EndpointError, OAuthError, CLIENT_AUTH_FAILED as GENERIC};
use crate::state::AppState;
use crate::store::{AuthMethod, Client};
use crate::tls::ClientCertificate;

pub const CLIENT_ASSERTION_TYPE_JWT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the request presented, before any lookup.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
    Jwt { assertion: String },
    None { id: String },
}

/// What a request carries besides its form to authenticate a client: the credentials of
/// `Authorization: Basic`, still encoded, and the client certificate of its connection (or of a
/// trusted proxy's `tls.client_cert_header`). Taken from the request so that protocol code never
/// sees headers.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    pub basic: Option<String>,
    pub certificate: Option<ClientCertificate>,
}

/// The name the endpoints know it by.
pub type BasicAuthorization = ClientCredentials;

impl FromRequestParts<AppState> for ClientCredentials {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let basic = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
            .map(|v| v[6..].trim().to_string());
        Ok(Self { basic, certificate: crate::tls::presented_certificate(parts, &state.config) })
    }
}

/// Authenticates the calling client, or fails with `invalid_client` (401; with a Basic
/// challenge when Basic was tried) or `invalid_request` when the request is malformed.
pub async fn authenticate(state: &AppState, credentials: &ClientCredentials, form: &OAuthForm) -> Result<Client, EndpointError> {
    let presented = presented(credentials.basic.as_deref(), form)?;
    let basic = matches!(presented, Presented::Basic { .. });
    let fail = |why: &str| -> EndpointError {
        let e = OAuthError::invalid_client(why.to_string());
        if basic { e.with_basic_challenge().into() } else { e.into() }
    };
    match presented {
        Presented::Basic { id, secret } | Presented::Post { id, secret } => {
            let method = if basic { AuthMethod::ClientSecretBasic } else { AuthMethod::ClientSecretPost };
            let client = state.client(&id).await?;
            // Hash the presented secret even for unknown clients: same work either way.
            let stored = client.as_ref().and_then(|c| c.secret_hash.clone()).unwrap_or_else(|| vec![0u8; 32]);
            let matches = secret_matches(&secret, &stored);
            match client {
                Some(c) if c.auth_method == method && c.secret_hash.is_some() && matches => Ok(c),
                // One answer for every failure: which client ids exist, and how they
                // authenticate, is not for an unauthenticated caller to learn.
                Some(c) if c.auth_method != method => {
                    tracing::info!(client_id = %c.id, expected = c.auth_method.as_str(), "client used the wrong authentication method");
                    Err(fail(GENERIC))
                }
                _ => Err(fail(GENERIC)),
            }
        }
        Presented::Jwt { assertion } => super::client_assertion::authenticate(state, form, &assertion).await,
        Presented::None { id } => match state.client(&id).await? {
            Some(c) if c.auth_method == AuthMethod::None => Ok(c),
            Some(c) if c.auth_method.uses_certificate() => {
                let Some(certificate) = &credentials.certificate else {
                    tracing::info!(client_id = %c.id, "mTLS client presented no certificate");
                    return Err(fail(GENERIC));
                };
                match super::client_certificate::authenticate(state, &c, &certificate.0).await {
                    Ok(()) => Ok(c),
                    Err(why) => {
                        tracing::info!(client_id = %c.id, reason = %why, "client certificate refused");
                        Err(fail(GENERIC))
                    }
                }
            }
            Some(c) => {
                tracing::info!(client_id = %c.id, expected = c.auth_method.as_str(), "confidential client sent no credentials");
                Err(fail(GENERIC))
            }
            None => Err(fail(GENERIC)),
        },
    }
}

fn presented(basic: Option<&str>, form: &OAuthForm) -> Result<Presented, OAuthError> {
    let post_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    let count = basic.is_some() as u8 + post_secret.is_some() as u8 + (assertion.is_some() || assertion_type.is_some()) as u8;
    if count > 1 {
        return Err(OAuthError::invalid_request("use exactly one client authentication method"));
    }
    let form_id = form.get("client_id");
    if let Some(encoded) = basic {
        let (id, secret) = decode_basic(encoded).ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials").with_basic_challenge())?;
        if form_id.is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_request("client_id in the body differs from the authenticated client"));
        }
        return Ok(Presented::Basic { id, secret });
    }
    if let Some(secret) = post_secret {
        let id = form_id.ok_or_else(|| OAuthError::invalid_request("client_secret without client_id"))?;
        return Ok(Presented::Post { id: id.to_string(), secret: secret.to_string() });
    }
    if assertion.is_some() || assertion_type.is_some() {
        if assertion_type != Some(CLIENT_ASSERTION_TYPE_JWT) {
            return Err(OAuthError::invalid_request(format!("client_assertion_type must be {CLIENT_ASSERTION_TYPE_JWT}")));
        }
        let assertion = assertion.ok_or_else(|| OAuthError::invalid_request("missing client_assertion"))?;
        return Ok(Presented::Jwt { assertion: assertion.to_string() });
    }
    match form_id {
        Some(id) => Ok(Presented::None { id: id.to_string() }),
        None => Err(OAuthError::invalid_client("no client authentication")),
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64.
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let raw = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| -> Option<String> {
        let s = s.replace('+', " ");
        let decoded = url::form_urlencoded::parse(format!("v={}", s.replace('&', "%26").replace('=', "%3D").replace(' ', "+")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        Some(decoded)
    };
    let id = decode(id)?;
    (!id.is_empty()).then_some(())?;
    Some((id, decode(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> Option<String> {
        Some(STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(decode_basic(&STANDARD.encode("my%20app:s%3Acret+x")), Some(("my app".into(), "s:cret x".into())));
        assert_eq!(decode_basic(&STANDARD.encode("id:se:cret")), Some(("id".into(), "se:cret".into())));
        assert_eq!(decode_basic("%%%"), None);
        assert_eq!(decode_basic(&STANDARD.encode(":x")), None);
    }

    #[test]
    fn exactly_one_method() {
        let form = OAuthForm::parse(b"client_id=a&client_secret=b").unwrap();
        assert_eq!(presented(basic("a", "b").as_deref(), &form).unwrap_err().code, "invalid_request");
        let form = OAuthForm::parse(b"client_id=a&client_secret=b").unwrap();
        assert_eq!(presented(None, &form).unwrap(), Presented::Post { id: "a".into(), secret: "b".into() });
        let form = OAuthForm::parse(b"client_id=a").unwrap();
        assert_eq!(presented(None, &form).unwrap(), Presented::None { id: "a".into() });
        let form = OAuthForm::parse(b"client_assertion=x&client_assertion_type=other").unwrap();
        assert_eq!(presented(None, &form).unwrap_err().code, "invalid_request");
        let form = OAuthForm::parse(b"client_id=other").unwrap();
        assert_eq!(presented(basic("a", "b").as_deref(), &form).unwrap_err().code, "invalid_request");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn urlencode(s: &str) -> String {
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
        }

        proptest! {
            /// RFC 6749 §2.3.1: whatever the client's id and secret, encoding then decoding returns them.
            #[test]
            fn basic_credentials_round_trip(id in ".{1,40}", secret in ".{0,60}") {
                let header = STANDARD.encode(format!("{}:{}", urlencode(&id), urlencode(&secret)));
                prop_assert_eq!(decode_basic(&header), Some((id, secret)));
            }

            #[test]
            fn garbage_is_refused_without_panic(text in ".{0,80}") {
                let _ = decode_basic(&text);
            }

            #[test]
            fn two_methods_are_never_accepted(id in "[a-z]{1,10}", secret in "[a-z]{1,10}") {
                let form = OAuthForm::parse(format!("client_id={id}&client_secret={secret}").as_bytes()).unwrap();
                prop_assert_eq!(presented(basic(&id, &secret).as_deref(), &form).unwrap_err().code, "invalid_request");
            }
        }
    }
}
