//! The UserInfo endpoint (OIDC Core §5.3): a bearer access token in the header or, for POST,
//! the form body (RFC 6750 §2.1, §2.2); claims by scope.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::crypto::verify::verify_own_jwt;
use crate::oauth::access_token::{self, AccessTokenClaims};
use crate::oauth::form::parse_unique;
use crate::state::AppState;

struct BearerError {
    status: StatusCode,
    code: Option<&'static str>,
    description: &'static str,
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let challenge = match self.code {
            Some(code) => format!("Bearer realm=\"sesame\", error=\"{code}\", error_description=\"{}\"", self.description),
            None => "Bearer realm=\"sesame\"".to_string(),
        };
        let body = json!({"error": self.code.unwrap_or("invalid_request"), "error_description": self.description});
        let mut response = (self.status, Json(body)).into_response();
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        crate::error::no_store(h);
        response
    }
}

fn invalid_token(description: &'static str) -> BearerError {
    BearerError { status: StatusCode::UNAUTHORIZED, code: Some("invalid_token"), description }
}

/// The bearer token from exactly one place.
fn bearer(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<String, BearerError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
        .map(|v| v[7..].trim().to_string());
    let is_form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = if *method == Method::POST && is_form {
        let form = parse_unique(body).map_err(|_| BearerError { status: StatusCode::BAD_REQUEST, code: Some("invalid_request"), description: "malformed body" })?;
        form.get("access_token").cloned()
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(BearerError { status: StatusCode::BAD_REQUEST, code: Some("invalid_request"), description: "send the token in one place only" }),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(BearerError { status: StatusCode::UNAUTHORIZED, code: None, description: "a bearer token is required" }),
    }
}

pub async fn userinfo(State(state): State<AppState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    match answer(&state, &method, &headers, &body).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            crate::error::no_store(response.headers_mut());
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<Value, BearerError> {
    let token = bearer(method, headers, body)?;
    let verified = verify_own_jwt::<AccessTokenClaims>(&state.keys, &token, state.config.issuer(), "at+jwt", false)
        .map_err(|_| invalid_token("the access token is invalid or expired"))?;
    let claims = verified.claims;
    let server_error = || BearerError { status: StatusCode::SERVICE_UNAVAILABLE, code: Some("temporarily_unavailable"), description: "try again" };
    if access_token::is_denied(state, &claims.jti).await.map_err(|_| server_error())? {
        return Err(invalid_token("the access token was revoked"));
    }
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Err(BearerError { status: StatusCode::FORBIDDEN, code: Some("insufficient_scope"), description: "the openid scope is required" });
    }
    let Some(user) = state.durable.user(&claims.sub).await.map_err(|_| server_error())?.filter(|u| !u.disabled) else {
        return Err(invalid_token("the user no longer exists"));
    };
    let mut out = Map::new();
    out.insert("sub".into(), Value::String(user.sub.clone()));
    if scopes.contains(&"profile") {
        out.insert("preferred_username".into(), Value::String(user.username.clone()));
        if let Some(name) = &user.name {
            out.insert("name".into(), Value::String(name.clone()));
        }
    }
    if scopes.contains(&"email") {
        if let Some(email) = &user.email {
            out.insert("email".into(), Value::String(email.clone()));
            // Addresses are set by administrators, not self-asserted.
            out.insert("email_verified".into(), Value::Bool(true));
        }
    }
    Ok(Value::Object(out))
}
