//! The `client_credentials` grant (RFC 6749 §4.4), with RFC 8707 resource indicators.

use crate::dpop::VerifiedProof;
use crate::oauth::scope::Scopes;
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::tokens::access::{self, AccessTokenRequest, Issuer};
use crate::state::AppState;
use crate::store::Client;
use crate::tls::ClientCertificate;

use super::request::ClientCredentialsRequest;
use super::TokenResponse;

/// Scopes that only mean something for a user.
const USER_ONLY_SCOPES: [&str; 2] = ["openid", "offline_access"];

/// `certificate`: the client certificate the client authenticated with (mTLS): its tokens are
/// bound to it (RFC 8705 §3).
pub async fn grant(state: &AppState, client: &Client, req: &ClientCredentialsRequest, proof: Option<&VerifiedProof>, certificate: Option<&ClientCertificate>) -> Result<TokenResponse, EndpointError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("public clients cannot use client_credentials").into());
    }
    let scopes = granted_scopes(client, req.scope.as_deref())?;
    let audience = resources(&req.resources)?;
    let now = state.now();
    let dpop_jkt = proof.map(|p| p.jkt.clone());
    let access = access::issue(Issuer::of(state), AccessTokenRequest { audience, dpop_jkt: dpop_jkt.clone(), certificate_thumbprint: certificate.map(|c| c.thumbprint()), ..AccessTokenRequest::for_client(&state.config, client, &client.id, &scopes) }, now)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(dpop_jkt.as_deref()),
        expires_in: access.expires_in,
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        ..TokenResponse::default()
    })
}

/// The asked scopes, each allowed to the client; none asked means all the client's own.
pub fn granted_scopes(client: &Client, asked: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(asked) = asked else {
        return Ok(client.scopes.iter().filter(|s| !USER_ONLY_SCOPES.contains(&s.as_str())).cloned().collect());
    };
    let asked = Scopes::parse(asked)?;
    for s in asked.iter() {
        if USER_ONLY_SCOPES.contains(&s) {
            return Err(OAuthError::invalid_scope(format!("scope `{s}` needs a user; client_credentials has none")));
        }
        if !client.scopes.iter().any(|c| c == s) {
            return Err(OAuthError::invalid_scope(format!("scope `{s}` is not allowed for this client")));
        }
    }
    Ok(asked.into_vec())
}

/// RFC 8707 §2: absolute URIs without a fragment.
pub fn resources(list: &[String]) -> Result<Vec<String>, OAuthError> {
    list.iter()
        .map(|r| match url::Url::parse(r) {
            Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => Ok(r.clone()),
            _ => Err(OAuthError::new(ErrorCode::InvalidTarget, format!("resource `{r}` must be an absolute URI without a fragment"))),
        })
        .collect()
}
