//! Token introspection (RFC 7662) for resource servers: JWT access tokens and refresh tokens.
//! An inactive token gets exactly `{"active": false}`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::tokens::access::{self, AccessTokenClaims};
use super::client_auth::{self, BasicAuthorization};
use super::form::OAuthForm;
use crate::tokens::refresh;
use crate::crypto::verify::{verify_own_jwt, Expect};
use crate::error::{no_store, EndpointError, OAuthError};
use crate::state::AppState;
use crate::store::Client;

pub async fn introspect(State(state): State<AppState>, basic: BasicAuthorization, form: OAuthForm) -> Result<Response, EndpointError> {
    let client = client_auth::authenticate(&state, &basic, &form).await?;
    if client.is_public() {
        return Err(OAuthError::invalid_client("public clients cannot introspect").into());
    }
    let allowed = &state.config.introspection.allowed_clients;
    if !allowed.is_empty() && !allowed.contains(&client.id) {
        return Err(OAuthError::unauthorized_client("this client may not introspect tokens").into());
    }
    let token = form.require("token")?;
    if form.get("token_type_hint") == Some("api_key") || crate::api_keys::format::parse(token).is_some() {
        return api_key(&state, &form, token).await;
    }
    // The hint only orders the lookups; every kind is tried.
    let refresh_first = form.get("token_type_hint") == Some("refresh_token");
    let answer = if refresh_first {
        match as_refresh_token(&state, &client, token).await? {
            Some(v) => Some(v),
            None => as_access_token(&state, token).await?,
        }
    } else {
        match as_access_token(&state, token).await? {
            Some(v) => Some(v),
            None => as_refresh_token(&state, &client, token).await?,
        }
    };
    let mut response = Json(answer.unwrap_or_else(|| json!({"active": false}))).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

async fn as_access_token(state: &AppState, token: &str) -> Result<Option<Value>, EndpointError> {
    if token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Ok(None);
    }
    let Ok(verified) = verify_own_jwt::<AccessTokenClaims>(&state.keys, token, state.config.issuer(), Expect::ACCESS_TOKEN, state.now()) else {
        return Ok(None);
    };
    let c = verified.claims;
    if access::is_denied(state, &c).await? {
        return Ok(None);
    }
    let mut v = json!({
        "active": true,
        // RFC 9449 §6.2: a bound token is a DPoP token, and its key is named.
        "token_type": crate::oauth::token::token_type(c.dpop_jkt()),
        "client_id": c.client_id,
        "sub": c.sub,
        "aud": c.aud,
        "iss": c.iss,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
    });
    if !c.scope.is_empty() {
        v["scope"] = Value::String(c.scope);
    }
    if let Some(cnf) = &c.cnf {
        v["cnf"] = serde_json::to_value(cnf).unwrap_or_default();
    }
    Ok(Some(v))
}

/// Refresh tokens are only described to the client that holds them.
async fn as_refresh_token(state: &AppState, client: &Client, token: &str) -> Result<Option<Value>, EndpointError> {
    let Some(t) = refresh::find(state, token).await? else { return Ok(None) };
    if t.client_id != client.id || !refresh::is_live(&t, state.now()) {
        return Ok(None);
    }
    Ok(Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "client_id": t.client_id,
        "sub": t.sub,
        "scope": t.scopes.join(" "),
        "iat": t.created_at,
        "exp": t.idle_expires_at.min(t.absolute_expires_at),
        "iss": state.config.issuer(),
    })))
}

/// An API key presented to a resource server; `client_ip`, when given, enforces its networks.
async fn api_key(state: &AppState, form: &OAuthForm, key: &str) -> Result<Response, EndpointError> {
    let caller = match form.get("client_ip") {
        Some(ip) => Some(ip.parse().map_err(|_| OAuthError::invalid_request("client_ip is not an IP address"))?),
        None => None,
    };
    let answer = match crate::api_keys::verify(state, key, caller).await? {
        Ok(k) => json!({
            "active": true,
            "token_type": "api_key",
            "sub": k.id,
            "client_id": k.id,
            "owner": k.name,
            "env": k.env,
            "scope": k.scopes.join(" "),
            "exp": k.expires_at,
            "iss": state.config.issuer(),
        }),
        // The resource server should pass this on to its caller as a 429.
        Err(crate::api_keys::Rejection::RateLimited { retry_after }) => return Err(OAuthError::rate_limited(retry_after).into()),
        Err(_) => json!({"active": false}),
    };
    let mut response = Json(answer).into_response();
    no_store(response.headers_mut());
    Ok(response)
}
