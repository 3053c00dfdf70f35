//! The device code grant (RFC 8628 §3.4, §3.5): the device polls until its user answered at the
//! verification page; an approved device code yields tokens once.

use crate::dpop::VerifiedProof;
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::oauth::device::records::{self, Polled};
use crate::oauth::grant_type::GrantType;
use crate::state::AppState;
use crate::store::Client;
use crate::tls::ClientCertificate;
use crate::tokens::access::{self, AccessTokenRequest, Issuer};
use crate::tokens::id::{self, IdTokenFacts};
use crate::tokens::refresh::{self, NewRefreshGrant};

use super::request::DeviceCodeRequest;
use super::TokenResponse;

/// With a DPoP proof the tokens are bound to its key (the access token's `cnf.jkt`, and a public
/// client's refresh family), and with a client certificate to it, as for the other grants.
pub async fn grant(state: &AppState, client: &Client, req: &DeviceCodeRequest, proof: Option<&VerifiedProof>, certificate: Option<&ClientCertificate>) -> Result<TokenResponse, EndpointError> {
    let now = state.now();
    let grant = match records::poll(state, &req.device_code, &client.id, now).await? {
        Polled::Approved(grant) => grant,
        Polled::Pending => return Err(OAuthError::new(ErrorCode::AuthorizationPending, "the user has not answered yet").into()),
        Polled::SlowDown => return Err(OAuthError::new(ErrorCode::SlowDown, "polling too fast: wait five seconds longer between requests").into()),
        Polled::Expired => return Err(OAuthError::new(ErrorCode::ExpiredToken, "the device code expired; start again").into()),
        Polled::Denied => return Err(OAuthError::new(ErrorCode::AccessDenied, "the user denied the request").into()),
        Polled::Invalid(why) => return Err(OAuthError::invalid_grant(why).into()),
    };
    // The user may have signed out (or been signed out) between approving and this poll.
    if !crate::session::is_on(state, &grant.sid).await? {
        return Err(OAuthError::invalid_grant("the sign-in session that approved the device has ended").into());
    }
    let issuer = Issuer::of(state);
    let groups = crate::tokens::groups_claim(state, &grant.sub, &grant.scopes).await?;
    let dpop_jkt = proof.map(|p| p.jkt.clone());
    let access = access::issue(issuer, AccessTokenRequest { groups: groups.clone(), dpop_jkt: dpop_jkt.clone(), certificate_thumbprint: certificate.map(|c| c.thumbprint()), ..AccessTokenRequest::for_grant(&state.config, client, &grant) }, now)?;
    let id_token = if grant.includes("openid") {
        Some(id::issue(issuer, IdTokenFacts { grant: &grant, nonce: None, access_token: Some(&access.token), groups: groups.as_deref() }, now)?)
    } else {
        None
    };
    let refresh = if client.allows_grant(GrantType::RefreshToken) {
        let binding = super::public_refresh_binding(client, dpop_jkt.as_deref(), certificate);
        Some(refresh::issue_new_family(state, binding.apply(NewRefreshGrant::of(&grant)), &access.jti, access.exp, now).await?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(dpop_jkt.as_deref()),
        expires_in: access.expires_in,
        scope: Some(grant.scopes.join(" ")),
        refresh_token: refresh.map(|r| r.token),
        id_token,
        ..TokenResponse::default()
    })
}
