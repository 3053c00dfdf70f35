//! The `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).

use crate::tls::ClientCertificate;
use crate::dpop::VerifiedProof;
use crate::error::{EndpointError, OAuthError};
use crate::tokens::access::{self, AccessTokenRequest, Issuer};
use crate::oauth::scope::Scopes;
use crate::tokens::refresh::{self, Refused};
use crate::state::AppState;
use crate::store::Client;

use super::request::RefreshRequest;
use super::TokenResponse;

/// `certificate`: the client certificate the client authenticated with (mTLS): the access token
/// is bound to it (RFC 8705 §3).
pub async fn grant(state: &AppState, client: &Client, req: &RefreshRequest, proof: Option<&VerifiedProof>, certificate: Option<&ClientCertificate>) -> Result<TokenResponse, EndpointError> {
    let presented = req.refresh_token.as_str();
    let now = state.now();
    let stored = refresh::find(state, presented).await?;
    // Refuse a widened scope before rotating, so a bad request does not cost the client its token.
    let dpop_jkt = proof.map(|p| p.jkt.clone());
    if let Some(found) = stored.as_ref().filter(|t| t.client_id == client.id) {
        Scopes::narrowed(&found.scopes, req.scope.as_deref())?;
        // A stolen bound refresh token is worth nothing without its key; refused before rotating,
        // so the holder's own token stays usable.
        if !refresh::proves_binding(found, dpop_jkt.as_deref()) {
            state.metrics.security_event("dpop_refresh_key_mismatch");
            return Err(OAuthError::invalid_grant("the refresh token is bound to a DPoP key: send a proof of that key").into());
        }
        if !refresh::proves_certificate(found, certificate.map(|c| c.thumbprint()).as_deref()) {
            state.metrics.security_event("mtls_refresh_certificate_mismatch");
            return Err(OAuthError::invalid_grant("the refresh token is bound to a client certificate: send it over mutual TLS").into());
        }
    }
    let rotating = refresh::present(state, &client.id, stored, now).await?.map_err(refused)?;
    let token = rotating.token();
    // A user who has been disabled or removed gets no new tokens.
    if token.sub != client.id && state.durable.user(&token.sub).await?.is_none_or(|u| u.disabled) {
        refresh::revoke_family(state, &token.family_id).await?;
        return Err(OAuthError::invalid_grant("the user of this grant can no longer sign in").into());
    }
    // Narrowing is allowed for this access token; the family keeps its original scopes.
    let scopes = Scopes::narrowed(&token.scopes, req.scope.as_deref())?;
    // Signed in memory first: its jti is stored with the successor, and it is answered only once
    // the rotation has committed.
    // The groups as they are now: the last upstream sign-in's.
    let groups = crate::tokens::groups_claim(state, &token.sub, &scopes).await?;
    let access = access::issue(
        Issuer::of(state),
        AccessTokenRequest { auth_time: token.auth_time, sid: token.sid.clone(), groups, dpop_jkt: dpop_jkt.clone(), certificate_thumbprint: certificate.map(|c| c.thumbprint()), ..AccessTokenRequest::for_client(&state.config, client, &token.sub, &scopes) },
        now,
    )?;
    let next = refresh::rotate(state, &rotating, &access.jti, access.exp, now).await?.map_err(refused)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(dpop_jkt.as_deref()),
        expires_in: access.expires_in,
        scope: Some(scopes.join(" ")),
        refresh_token: Some(next),
        ..TokenResponse::default()
    })
}

fn refused(why: Refused) -> EndpointError {
    match why {
        Refused::Reused => OAuthError::invalid_grant("the refresh token was already used; its grant is revoked").into(),
        Refused::Invalid => OAuthError::invalid_grant("the refresh token is invalid, expired or revoked").into(),
    }
}
