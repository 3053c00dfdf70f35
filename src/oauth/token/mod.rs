//! The token endpoint (RFC 6749 §3.2): authenticates the client, then dispatches on `grant_type`.

mod authorization_code;
mod client_credentials;
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
use crate::error::{no_store, EndpointError, OAuthError};
use crate::net::ClientIp;
use crate::state::AppState;
use crate::store::Client;

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
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        no_store(response.headers_mut());
        response
    }
}

pub async fn token(State(state): State<AppState>, ClientIp(caller): ClientIp, basic: BasicAuthorization, form: OAuthForm) -> Result<TokenResponse, EndpointError> {
    let request = TokenRequest::parse(&form)?;
    let grant = request.grant_type();
    let response = match request {
        TokenRequest::TokenExchange(req) => {
            // The API key authenticates the exchange; client credentials sent as well are still
            // checked, never ignored: a wrong secret is invalid_client here too.
            if basic.0.is_some() || ["client_id", "client_secret", "client_assertion"].iter().any(|p| form.get(p).is_some()) {
                client_auth::authenticate(&state, &basic, &form).await?;
            }
            token_exchange::exchange_api_key(&state, &req, caller).await?
        }
        TokenRequest::ClientCredentials(req) => client_credentials::grant(&state, &client(&state, &basic, &form, grant).await?, &req).await?,
        TokenRequest::RefreshToken(req) => refresh_token::grant(&state, &client(&state, &basic, &form, grant).await?, &req).await?,
        TokenRequest::AuthorizationCode(req) => authorization_code::grant(&state, &client(&state, &basic, &form, grant).await?, &req).await?,
    };
    state.metrics.token_issued(grant.label());
    Ok(response)
}

/// The authenticated client, if it is registered for `grant`.
async fn client(state: &AppState, basic: &BasicAuthorization, form: &OAuthForm, grant: GrantType) -> Result<Client, EndpointError> {
    let client = client_auth::authenticate(state, basic, form).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!("this client may not use the {grant} grant")).into());
    }
    Ok(client)
}
