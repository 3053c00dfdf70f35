//! The token endpoint (RFC 6749 §3.2): authenticates the client, then dispatches on `grant_type`.

mod authorization_code;
mod client_credentials;
mod refresh_token;
mod token_exchange;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::client_auth;
use super::form::OAuthForm;
use crate::error::{no_store, EndpointError, OAuthError};
use crate::state::AppState;
use crate::store::Client;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grants this server implements; discovery advertises exactly these.
pub const GRANT_TYPES_SUPPORTED: [&str; 4] = ["authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE];

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

pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<TokenResponse, EndpointError> {
    let grant_type = form.require("grant_type")?;
    let Some(grant) = GRANT_TYPES_SUPPORTED.iter().find(|g| **g == grant_type) else {
        return Err(OAuthError::unsupported_grant_type(format!("grant_type `{grant_type}` is not supported")).into());
    };
    if *grant == TOKEN_EXCHANGE {
        // The only subject this server exchanges is an API key, which authenticates itself.
        if form.get("subject_token_type") != Some(crate::apikeys::TOKEN_TYPE) {
            return Err(OAuthError::invalid_request(format!("subject_token_type must be {}", crate::apikeys::TOKEN_TYPE)).into());
        }
        let caller = crate::net::client_ip(peer, &headers, &state.config.trusted_proxies);
        let response = token_exchange::exchange_api_key(&state, &form, caller).await?;
        state.metrics.token_issued("token_exchange");
        return Ok(response);
    }
    let client = client_auth::authenticate(&state, &headers, &form).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!("this client may not use the {grant} grant")).into());
    }
    let response = dispatch(&state, &client, grant, &form).await?;
    state.metrics.token_issued(grant);
    Ok(response)
}

async fn dispatch(state: &AppState, client: &Client, grant: &str, form: &OAuthForm) -> Result<TokenResponse, EndpointError> {
    match grant {
        "client_credentials" => client_credentials::grant(state, client, form).await,
        "refresh_token" => refresh_token::grant(state, client, form).await,
        "authorization_code" => authorization_code::grant(state, client, form).await,
        _ => Err(OAuthError::unsupported_grant_type(format!("grant_type `{grant}` is not supported")).into()),
    }
}
