//! The admin HTTP API for clients: register (the `client add` options as JSON, through the same
//! `admin::clients::validate` as the CLI), list, show, remove, rotate a secret. Same
//! authorization as the rest of `/admin`. Removal and rotation take effect on this node at once
//! (its cached copy is dropped); other nodes see them within the cache's second.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::clients::{self, NewClient};
use super::http::AdminCaller;
use super::AdminError;
use crate::crypto::alg::SigningAlg;
use crate::error::AdminApiError;
use crate::state::AppState;
use crate::store::AuthMethod;

type Answer = Result<Response, AdminApiError>;

/// The body of `POST /admin/clients`: exactly the options of `sesame client add`. Whether they
/// make a valid client is for `clients::validate` alone to say.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientRegistration {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scope: Option<String>,
    /// Default `client_secret_basic`.
    pub auth_method: Option<AuthMethod>,
    /// Shorthand for `"auth_method": "none"`.
    pub public: bool,
    pub jwks_uri: Option<String>,
    /// A JWK Set: the JSON object itself, or a string holding it.
    pub jwks: Option<Value>,
    pub first_party: bool,
    pub access_token_alg: Option<SigningAlg>,
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub tls_client_auth_subject_dn: Option<String>,
    pub tls_client_auth_san_dns: Option<String>,
    pub require_dpop: bool,
    pub require_par: bool,
}

impl ClientRegistration {
    /// What the CLI would have built from the same options.
    pub fn into_new_client(self) -> Result<NewClient, AdminError> {
        let auth_method = match (self.public, self.auth_method) {
            (true, Some(m)) if m != AuthMethod::None => return Err(AdminError::Invalid("give auth_method or public, not both".into())),
            (true, _) => AuthMethod::None,
            (false, m) => m.unwrap_or(AuthMethod::ClientSecretBasic),
        };
        let jwks = match self.jwks {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(set @ Value::Object(_)) => Some(set.to_string()),
            Some(_) => return Err(AdminError::Invalid("jwks must be a JWK Set: a JSON object, or a string holding one".into())),
        };
        Ok(NewClient {
            name: self.name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scope: self.scope,
            auth_method,
            jwks_uri: self.jwks_uri,
            jwks,
            first_party: self.first_party,
            access_token_alg: self.access_token_alg,
            require_mfa: self.require_mfa,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            tls_client_auth_subject_dn: self.tls_client_auth_subject_dn,
            tls_client_auth_san_dns: self.tls_client_auth_san_dns,
            require_dpop: self.require_dpop,
            require_par: self.require_par,
        })
    }
}

/// `201` with the client and its `client_secret`, shown this once (null when it has none).
pub async fn add(State(state): State<AppState>, AdminCaller(actor): AdminCaller, body: Result<Json<ClientRegistration>, JsonRejection>) -> Answer {
    let Json(registration) = body?;
    let created = clients::add(state.durable.as_ref(), &registration.into_new_client()?, &actor, state.now()).await?;
    state.client_cache.remove(&created.client.id);
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list(State(state): State<AppState>, _: AdminCaller) -> Answer {
    Ok(Json(json!({ "clients": clients::list(state.durable.as_ref()).await? })).into_response())
}

pub async fn show(State(state): State<AppState>, _: AdminCaller, id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id?;
    Ok(Json(clients::show(state.durable.as_ref(), &id).await?).into_response())
}

/// `204`; the client's tokens requests fail at once on this node.
pub async fn remove(State(state): State<AppState>, AdminCaller(actor): AdminCaller, id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id?;
    clients::remove(state.durable.as_ref(), &id, &actor, state.now()).await?;
    state.client_cache.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The new secret, shown this once; the old one fails at once on this node.
pub async fn rotate_secret(State(state): State<AppState>, AdminCaller(actor): AdminCaller, id: Result<Path<String>, PathRejection>) -> Answer {
    let Path(id) = id?;
    let secret = clients::rotate_secret(state.durable.as_ref(), &id, &actor, state.now()).await?;
    state.client_cache.remove(&id);
    Ok(Json(json!({ "client_id": id, "client_secret": secret })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(body: Value) -> Result<ClientRegistration, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        assert!(registration(json!({"name": "a", "secret": "x"})).unwrap_err().to_string().contains("unknown field `secret`"));
        assert!(registration(json!({"name": "a", "auth_method": "magic"})).unwrap_err().to_string().contains("unknown variant `magic`"));
        assert!(registration(json!({"name": 5})).is_err());
    }

    #[test]
    fn jwks_is_an_object_or_a_string_holding_one() {
        let set = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        let from_object = registration(json!({"name": "a", "jwks": set})).unwrap().into_new_client().unwrap();
        let from_string = registration(json!({"name": "a", "jwks": set.to_string()})).unwrap().into_new_client().unwrap();
        assert_eq!(from_object.jwks, from_string.jwks);
        let refused = registration(json!({"name": "a", "jwks": [1]})).unwrap().into_new_client().unwrap_err();
        assert!(refused.to_string().starts_with("jwks must be a JWK Set"), "{refused}");
    }

    #[test]
    fn public_is_shorthand_for_auth_method_none() {
        let spec = registration(json!({"name": "a", "public": true})).unwrap().into_new_client().unwrap();
        assert_eq!(spec.auth_method, AuthMethod::None);
        assert!(registration(json!({"name": "a", "public": true, "auth_method": "private_key_jwt"})).unwrap().into_new_client().is_err());
        let defaults = registration(json!({"name": "a"})).unwrap().into_new_client().unwrap();
        assert_eq!(defaults.auth_method, NewClient::new("a").auth_method);
    }
}
