//! Token revocation (RFC 7009): refresh tokens (their whole family) and access tokens (denied by
//! `jti` until they expire). Unknown tokens get 200, as the RFC asks.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::tokens::access::{self, AccessTokenClaims};
use super::client_auth::{self, BasicAuthorization};
use super::form::OAuthForm;
use crate::tokens::refresh;
use crate::crypto::verify::{verify_own_jwt, Expect};
use crate::error::{no_store, EndpointError, OAuthError};
use crate::state::AppState;

pub async fn revoke(State(state): State<AppState>, basic: BasicAuthorization, form: OAuthForm) -> Result<Response, EndpointError> {
    let client = client_auth::authenticate(&state, &basic, &form).await?;
    let token = form.require("token")?;
    if let Some(t) = refresh::find(&state, token).await? {
        // RFC 7009 §2.1: a token issued to another client is refused, not silently kept.
        if t.client_id != client.id {
            return Err(OAuthError::unauthorized_client("the token was not issued to this client").into());
        }
        refresh::revoke_family(&state, &t.family_id).await?;
    } else if let Ok(v) = verify_own_jwt::<AccessTokenClaims>(&state.keys, token, state.config.issuer(), Expect::ACCESS_TOKEN, state.now()) {
        if v.claims.client_id != client.id {
            return Err(OAuthError::unauthorized_client("the token was not issued to this client").into());
        }
        access::deny(&state, &v.claims.jti, v.claims.exp).await?;
    }
    let mut response = axum::http::StatusCode::OK.into_response();
    no_store(response.headers_mut());
    Ok(response)
}
