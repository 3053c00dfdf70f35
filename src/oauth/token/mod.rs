//! The token endpoint (RFC 6749 §3.2): authenticates the client, then dispatches on `grant_type`.

mod authorization_code;
mod client_credentials;
mod refresh_token;
mod token_exchange;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::client_auth::{self, BasicAuthorization};
use super::form::OAuthForm;
use super::grant_type::GrantType;
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
    let grant_type = form.require("grant_type")?;
    let Some(grant) = GrantType::parse(grant_type) else {
        return Err(OAuthError::unsupported_grant_type(format!("grant_type `{grant_type}` is not supported")).into());
    };
    let response = match grant {
        // The only subject this server exchanges is an API key, which authenticates itself.
        GrantType::TokenExchange => {
            if form.get("subject_token_type") != Some(crate::api_keys::TOKEN_TYPE) {
                return Err(OAuthError::invalid_request(format!("subject_token_type must be {}", crate::api_keys::TOKEN_TYPE)).into());
            }
            token_exchange::exchange_api_key(&state, &form, caller).await?
        }
        GrantType::ClientCredentials => client_credentials::grant(&state, &client(&state, &basic, &form, grant).await?, &form).await?,
        GrantType::RefreshToken => refresh_token::grant(&state, &client(&state, &basic, &form, grant).await?, &form).await?,
        GrantType::AuthorizationCode => authorization_code::grant(&state, &client(&state, &basic, &form, grant).await?, &form).await?,
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
