//! `private_key_jwt` (RFC 7523 §2.2).

use crate::error::{EndpointError, OAuthError};
use crate::oauth::form::OAuthForm;
use crate::state::AppState;
use crate::store::Client;

pub async fn authenticate(_state: &AppState, _form: &OAuthForm, _assertion: &str) -> Result<Client, EndpointError> {
    Err(OAuthError::invalid_client("private_key_jwt is not enabled on this server").into())
}
