//! The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.5, OIDC Core §3.1.3).

use subtle::ConstantTimeEq;

use crate::tls::ClientCertificate;
use crate::dpop::VerifiedProof;
use crate::error::{EndpointError, OAuthError};
use crate::tokens::access::{self, AccessTokenRequest, Issuer};
use crate::oauth::authorize::checks::verifier_matches;
use crate::tokens::code::{self, Redemption, Taken};
use crate::tokens::refresh::{self, NewRefreshGrant};
use crate::tokens::id::{self, IdTokenFacts};
use crate::state::AppState;
use crate::store::Client;

use super::request::CodeRequest;
use super::TokenResponse;

/// `certificate`: the client certificate the client authenticated with (mTLS): the access token
/// is bound to it (RFC 8705 §3).
pub async fn grant(state: &AppState, client: &Client, req: &CodeRequest, proof: Option<&VerifiedProof>, certificate: Option<&ClientCertificate>) -> Result<TokenResponse, EndpointError> {
    let value = req.code.as_str();
    let code = match code::take(state, value).await? {
        Taken::Fresh(code) => code,
        Taken::Replayed(first) => {
            revoke_redemption(state, &first).await?;
            state.metrics.security_event("code_replay");
            tracing::warn!(client_id = %client.id, "authorization code redeemed twice; revoked what it yielded");
            return Err(OAuthError::invalid_grant("the authorization code was already used").into());
        }
        Taken::Unknown => return Err(OAuthError::invalid_grant("the authorization code is invalid or expired").into()),
    };
    if code.grant.client_id != client.id {
        return Err(OAuthError::invalid_grant("the authorization code was issued to another client").into());
    }
    match req.redirect_uri.as_deref() {
        Some(uri) if uri != code.redirect_uri => return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request").into()),
        None if code.redirect_uri_given => return Err(OAuthError::invalid_request("redirect_uri is required: the authorization request had one").into()),
        _ => {}
    }
    match (&code.code_challenge, req.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) if verifier_matches(challenge, verifier) => {}
        (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge").into()),
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required").into()),
        // A verifier for a code issued without a challenge is a downgrade attempt (RFC 9700 §4.8.2).
        (None, Some(_)) => return Err(OAuthError::invalid_grant("code_verifier sent, but the authorization request had no code_challenge").into()),
        (None, None) => {}
    }
    if !crate::session::is_on(state, &code.grant.sid).await? {
        return Err(OAuthError::invalid_grant("the sign-in session of the authorization code has ended").into());
    }
    let dpop_jkt = proof.map(|p| p.jkt.clone());
    if let Some(bound) = &code.dpop_jkt {
        if dpop_jkt.as_deref().is_none_or(|jkt| !bool::from(jkt.as_bytes().ct_eq(bound.as_bytes()))) {
            return Err(OAuthError::invalid_grant("the authorization code is bound to another DPoP key (dpop_jkt)").into());
        }
    }

    let now = state.now();
    let grant = &code.grant;
    let issuer = Issuer::of(state);
    let groups = crate::tokens::groups_claim(state, &grant.sub, &grant.scopes).await?;
    let access = access::issue(issuer, AccessTokenRequest { groups: groups.clone(), dpop_jkt: dpop_jkt.clone(), certificate_thumbprint: certificate.map(|c| c.thumbprint()), ..AccessTokenRequest::for_grant(&state.config, client, grant) }, now)?;
    let id_token = if grant.includes("openid") {
        Some(id::issue(issuer, IdTokenFacts { grant, nonce: code.nonce.as_deref(), access_token: Some(&access.token), groups: groups.as_deref() }, now)?)
    } else {
        None
    };
    let refresh = if client.allows_grant(crate::oauth::grant_type::GrantType::RefreshToken) {
        // A public client's refresh tokens are bound to the key its first tokens were (RFC 9449 §5).
        let binding = super::public_refresh_binding(client, dpop_jkt.as_deref(), certificate);
        Some(refresh::issue_new_family(state, binding.apply(NewRefreshGrant::of(grant)), &access.jti, access.exp, now).await?)
    } else {
        None
    };
    let redemption = Redemption {
        refresh_family: refresh.as_ref().map(|r| r.family_id.clone()),
        access_jti: Some(access.jti.clone()),
        access_exp: Some(access.exp),
    };
    if code::record_redemption(state, value, &redemption).await? {
        revoke_redemption(state, &redemption).await?;
        state.metrics.security_event("code_replay");
        tracing::warn!(client_id = %client.id, "authorization code replayed during its redemption; revoked what it yielded");
        return Err(OAuthError::invalid_grant("the authorization code was already used").into());
    }
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(dpop_jkt.as_deref()),
        expires_in: access.expires_in,
        scope: Some(grant.scopes.join(" ")),
        refresh_token: refresh.map(|r| r.token),
        id_token,
        issued_token_type: None,
        dpop_nonce: None,
    })
}

async fn revoke_redemption(state: &AppState, first: &Redemption) -> Result<(), EndpointError> {
    if let Some(family) = &first.refresh_family {
        refresh::revoke_family(state, family).await?;
    }
    if let (Some(jti), Some(exp)) = (&first.access_jti, first.access_exp) {
        access::deny(state, jti, exp).await?;
    }
    Ok(())
}
