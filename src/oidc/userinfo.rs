//! The UserInfo endpoint (OIDC Core §5.3): a bearer access token in the header or, for POST,
//! the form body (RFC 6750 §2.1, §2.2); claims by scope.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use crate::oauth::bearer::{authorize, BearerError, BearerToken, PresentedToken};
use crate::oauth::scope::Scopes;
use crate::state::AppState;

pub async fn userinfo(State(state): State<AppState>, BearerToken(token): BearerToken) -> Response {
    match answer(&state, &token).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            crate::error::no_store(response.headers_mut());
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, token: &PresentedToken) -> Result<Value, BearerError> {
    let claims = authorize(state, token, "openid").await?;
    let scopes = Scopes::parse(&claims.scope).unwrap_or_default();
    let Some(user) = state.durable.user(&claims.sub).await?.filter(|u| !u.disabled) else {
        return Err(BearerError::InvalidToken("the user no longer exists"));
    };
    let mut out = Map::new();
    out.insert("sub".into(), Value::String(user.sub.clone()));
    if scopes.contains("profile") {
        out.insert("preferred_username".into(), Value::String(user.username.clone()));
        if let Some(name) = &user.name {
            out.insert("name".into(), Value::String(name.clone()));
        }
    }
    if scopes.contains("email") {
        if let Some(email) = &user.email {
            out.insert("email".into(), Value::String(email.clone()));
            // Addresses are set by administrators, not self-asserted.
            out.insert("email_verified".into(), Value::Bool(true));
        }
    }
    if scopes.contains(crate::tokens::GROUPS_SCOPE) {
        let groups = state.durable.user_groups(&user.sub).await?;
        out.insert("groups".into(), Value::Array(groups.into_iter().map(Value::String).collect()));
    }
    Ok(Value::Object(out))
}
