//! Token exchange (RFC 8693) of an API key for a short-lived JWT access token, so services that
//! verify JWTs offline accept API-key callers too. The key itself authenticates the request.

use std::net::IpAddr;

use crate::api_keys::{self, Rejection};
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::tokens::access::{self, AccessTokenRequest, Issuer};
use crate::oauth::scope::Scopes;
use crate::state::AppState;

use super::client_credentials::resources;
use super::request::ExchangeRequest;
use super::TokenResponse;

pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub async fn exchange_api_key(state: &AppState, req: &ExchangeRequest, caller: IpAddr, dpop_jkt: Option<&str>) -> Result<TokenResponse, EndpointError> {
    let presented = req.subject_token.as_str();
    if let Some(wanted) = req.requested_token_type.as_deref() {
        if wanted != ACCESS_TOKEN_TYPE {
            return Err(OAuthError::invalid_request(format!("requested_token_type must be {ACCESS_TOKEN_TYPE}")).into());
        }
    }
    let key = match api_keys::verify(state, presented, Some(caller)).await? {
        Ok(k) => k,
        Err(Rejection::RateLimited { retry_after }) => return Err(OAuthError::rate_limited(retry_after).into()),
        Err(r) => return Err(OAuthError::invalid_grant(format!("the API key cannot be exchanged: {}", r.reason())).into()),
    };
    let scopes = Scopes::narrowed(&key.scopes, req.scope.as_deref())?;
    let mut audience = resources(&req.resources)?;
    if let Some(aud) = req.audience.as_deref() {
        audience.push(aud.to_string());
    }
    // RFC 8693 §2.2.2: a target this server does not issue for is `invalid_target`.
    let allowed = &state.config.api_keys.exchange_audiences;
    if let Some(unknown) = audience.iter().find(|a| !allowed.contains(a)) {
        return Err(OAuthError::new(ErrorCode::InvalidTarget, format!("`{unknown}` is not an audience API keys may be exchanged for")).into());
    }
    let now = state.now();
    // No token outlives its key (a retired key ends with its grace period).
    let ttl = (state.config.api_keys.exchanged_token_ttl.as_secs() as i64).min(key.expires_at - now).max(1);
    let request = AccessTokenRequest {
        client_id: &key.id,
        alg: state.config.tokens.access_token_alg,
        ttl,
        sub: &key.id,
        scopes: &scopes,
        audience,
        auth_time: None,
        sid: None,
        groups: None,
        dpop_jkt: dpop_jkt.map(str::to_string),
        certificate_thumbprint: None,
    };
    let access = access::issue(Issuer::of(state), request, now)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(dpop_jkt),
        expires_in: access.expires_in,
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        ..TokenResponse::default()
    })
}
