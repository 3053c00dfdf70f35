//! The token endpoint (RFC 6749 §3.2): authenticates the client, then dispatches on `grant_type`.

mod authorization_code;
mod client_credentials;
mod device_code;
mod refresh_token;
pub mod request;
mod token_exchange;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::client_auth::{self, BasicAuthorization};
use super::form::OAuthForm;
use super::grant_type::GrantType;
use request::TokenRequest;
use axum::http::HeaderValue;

use crate::dpop::{self, DpopHeader, ProofRequest, VerifiedProof};
use crate::error::{no_store, EndpointError, ErrorCode, OAuthError, DPOP_NONCE};
use crate::paths;
use crate::net::ClientIp;
use crate::state::AppState;
use crate::store::Client;
use crate::tokens::refresh::NewRefreshGrant;

#[derive(Debug, Default, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Sent as the `DPoP-Nonce` header when server nonces are on.
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let nonce = self.dpop_nonce.clone();
        let mut response = Json(self).into_response();
        no_store(response.headers_mut());
        if let Some(v) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            response.headers_mut().insert(DPOP_NONCE, v);
        }
        response
    }
}

/// `DPoP` for a token bound to a key (RFC 9449 §5), `Bearer` otherwise.
pub fn token_type(dpop_jkt: Option<&str>) -> &'static str {
    if dpop_jkt.is_some() { "DPoP" } else { "Bearer" }
}

pub async fn token(State(state): State<AppState>, ClientIp(caller): ClientIp, basic: BasicAuthorization, dpop: DpopHeader, form: OAuthForm) -> Result<TokenResponse, EndpointError> {
    // With server nonces on, every answer tells the client the nonce to use next.
    let nonce = dpop::nonce_to_send(&state.config, state.ephemeral.as_ref(), state.now()).await?;
    match answer(&state, caller, &basic, &dpop, &form).await {
        Ok(response) => Ok(TokenResponse { dpop_nonce: nonce, ..response }),
        Err(EndpointError::OAuth(e)) if e.dpop_nonce.is_none() => Err(e.with_dpop_nonce(nonce).into()),
        Err(e) => Err(e),
    }
}

async fn answer(state: &AppState, caller: std::net::IpAddr, basic: &BasicAuthorization, dpop: &DpopHeader, form: &OAuthForm) -> Result<TokenResponse, EndpointError> {
    let request = TokenRequest::parse(form)?;
    let grant = request.grant_type();
    let response = match request {
        TokenRequest::TokenExchange(req) => {
            // The API key authenticates the exchange; client credentials sent as well are still
            // checked, never ignored: a wrong secret is invalid_client here too.
            if basic.basic.is_some() || ["client_id", "client_secret", "client_assertion"].iter().any(|p| form.get(p).is_some()) {
                client_auth::authenticate(state, basic, form).await?;
            }
            let proof = proof_of(state, dpop, None).await?;
            token_exchange::exchange_api_key(state, &req, caller, proof.as_ref().map(|p| p.jkt.as_str())).await?
        }
        TokenRequest::ClientCredentials(req) => {
            let client = client(state, basic, form, grant).await?;
            let proof = proof_of(state, dpop, Some(&client)).await?;
            client_credentials::grant(state, &client, &req, proof.as_ref(), certificate_of(basic, &client)).await?
        }
        TokenRequest::RefreshToken(req) => {
            let client = client(state, basic, form, grant).await?;
            let proof = proof_of(state, dpop, Some(&client)).await?;
            refresh_token::grant(state, &client, &req, proof.as_ref(), certificate_of(basic, &client)).await?
        }
        TokenRequest::AuthorizationCode(req) => {
            let client = client(state, basic, form, grant).await?;
            let proof = proof_of(state, dpop, Some(&client)).await?;
            authorization_code::grant(state, &client, &req, proof.as_ref(), certificate_of(basic, &client)).await?
        }
        TokenRequest::DeviceCode(req) => {
            let client = client(state, basic, form, grant).await?;
            let proof = proof_of(state, dpop, Some(&client)).await?;
            device_code::grant(state, &client, &req, proof.as_ref(), certificate_of(basic, &client)).await?
        }
    };
    state.metrics.token_issued(grant.label());
    Ok(response)
}

/// The certificate that binds the request's tokens: the one a certificate-authenticated client
/// authenticated with (RFC 8705 §3), or the one a public client came with (§4: its refresh
/// tokens too). A confidential client authenticating otherwise is not bound to a certificate
/// its connection happens to carry.
fn certificate_of<'a>(credentials: &'a BasicAuthorization, client: &Client) -> Option<&'a crate::tls::ClientCertificate> {
    credentials.certificate.as_ref().filter(|_| client.auth_method.uses_certificate() || client.is_public())
}

/// What a new refresh family is bound to. A confidential client proves itself at every refresh,
/// so only a public client's family is bound: to the DPoP key it proved (RFC 9449 §5) and the
/// certificate it came with (RFC 8705 §4).
#[derive(Default)]
pub(super) struct RefreshBinding {
    dpop_jkt: Option<String>,
    x5t_s256: Option<String>,
}

impl RefreshBinding {
    pub(super) fn apply(self, grant: NewRefreshGrant) -> NewRefreshGrant {
        NewRefreshGrant { dpop_jkt: self.dpop_jkt, x5t_s256: self.x5t_s256, ..grant }
    }
}

pub(super) fn public_refresh_binding(client: &Client, dpop_jkt: Option<&str>, certificate: Option<&crate::tls::ClientCertificate>) -> RefreshBinding {
    if !client.is_public() {
        return RefreshBinding::default();
    }
    RefreshBinding { dpop_jkt: dpop_jkt.map(str::to_string), x5t_s256: certificate.map(|c| c.thumbprint()) }
}

/// The request's DPoP proof, verified for this endpoint; none when it sent none and `client`
/// does not require one.
async fn proof_of(state: &AppState, dpop: &DpopHeader, client: Option<&Client>) -> Result<Option<VerifiedProof>, EndpointError> {
    if !dpop.is_present() {
        if client.is_some_and(|c| c.require_dpop) {
            return Err(OAuthError::new(ErrorCode::InvalidDpopProof, "this client must send a DPoP proof").into());
        }
        return Ok(None);
    }
    let url = state.config.endpoint(paths::TOKEN);
    let request = ProofRequest { method: "POST", url: &url, access_token: None, nonce_required: state.config.dpop.nonce };
    match dpop::verify(&state.config, state.ephemeral.as_ref(), dpop, &request, state.now()).await {
        Ok(proof) => Ok(Some(proof)),
        Err(e) => Err(OAuthError::from_dpop(e)),
    }
}

/// The authenticated client, if it is registered for `grant`.
async fn client(state: &AppState, basic: &BasicAuthorization, form: &OAuthForm, grant: GrantType) -> Result<Client, EndpointError> {
    let client = client_auth::authenticate(state, basic, form).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!("this client may not use the {grant} grant")).into());
    }
    Ok(client)
}
