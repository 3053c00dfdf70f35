//! The device authorization endpoint (RFC 8628 §3.1, §3.2): the client authenticates as at the
//! token endpoint, must be registered for the device grant, and gets a device code to poll
//! with and a user code for its user to enter at the verification page.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::records;
use crate::error::{no_store, EndpointError, OAuthError};
use crate::oauth::authorize::checks;
use crate::oauth::client_auth::{self, BasicAuthorization};
use crate::oauth::form::OAuthForm;
use crate::oauth::grant_type::GrantType;
use crate::paths;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

impl IntoResponse for DeviceAuthorizationResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        no_store(response.headers_mut());
        response
    }
}

pub async fn device_authorization(State(state): State<AppState>, basic: BasicAuthorization, form: OAuthForm) -> Result<DeviceAuthorizationResponse, EndpointError> {
    let client = client_auth::authenticate(&state, &basic, &form).await?;
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client("this client may not use the device authorization grant").into());
    }
    let scopes = checks::scopes(&client, form.get("scope"))?;
    let issued = records::issue(&state, &client.id, scopes, state.now()).await?;
    let verification_uri = state.config.endpoint(paths::DEVICE);
    let mut complete = url::Url::parse(&verification_uri).map_err(|e| crate::error::AppError::Internal(e.to_string()))?;
    complete.query_pairs_mut().append_pair("user_code", &issued.user_code);
    Ok(DeviceAuthorizationResponse {
        device_code: issued.device_code,
        user_code: issued.user_code,
        verification_uri,
        verification_uri_complete: complete.to_string(),
        expires_in: issued.expires_in,
        interval: issued.interval,
    })
}
