use crate::error::{EndpointError, OAuthError};
use crate::oauth::form::OAuthForm;
use crate::state::AppState;
use crate::store::Client;

use super::TokenResponse;

pub async fn grant(_state: &AppState, _client: &Client, _form: &OAuthForm) -> Result<TokenResponse, EndpointError> {
    Err(OAuthError::unsupported_grant_type("client_credentials is not implemented yet").into())
}
