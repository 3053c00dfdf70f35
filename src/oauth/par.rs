//! Pushed authorization requests (RFC 9126): the client posts its authorization request to
//! the back channel (authenticated as at the token endpoint), sesame validates it with the
//! authorization endpoint's own checks and keeps it under a `request_uri` that the browser then
//! carries to `/authorize`: short-lived, bound to the client, usable once.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorize::{checks, pending::PendingAuthorization, validate};
use super::client_auth::{self, BasicAuthorization};
use super::form::OAuthForm;
use crate::crypto::secrets::{hash_hex, random_token};
use crate::dpop::{self, DpopHeader, ProofRequest};
use crate::error::{no_store, AppError, EndpointError, ErrorCode, OAuthError, DPOP_NONCE};
use crate::paths;
use crate::state::AppState;
use crate::store::Client;

/// RFC 9126 §2.2: the form of the `request_uri` values we hand out.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// What a `request_uri` stands for: the validated request of one client.
#[derive(Serialize, Deserialize)]
struct Pushed {
    client_id: String,
    request: PendingAuthorization,
}

fn key(reference: &str) -> String {
    format!("par:{}", hash_hex(reference))
}

pub async fn push(State(state): State<AppState>, basic: BasicAuthorization, dpop: DpopHeader, form: OAuthForm) -> Result<Response, EndpointError> {
    let nonce = dpop::nonce_to_send(&state.config, state.ephemeral.as_ref(), state.now()).await?;
    let mut response = match answer(&state, &basic, &dpop, &form).await {
        Ok(r) => r,
        Err(EndpointError::OAuth(e)) if e.dpop_nonce.is_none() => e.with_dpop_nonce(nonce.clone()).into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(v) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
        response.headers_mut().insert(DPOP_NONCE, v);
    }
    Ok(response)
}

async fn answer(state: &AppState, basic: &BasicAuthorization, dpop: &DpopHeader, form: &OAuthForm) -> Result<Response, EndpointError> {
    let client = client_auth::authenticate(state, basic, form).await?;
    let params = form.params();
    let get = |k: &str| form.get(k);
    // §2.1: a pushed request cannot itself point at another.
    if get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed").into());
    }
    if let Some(name) = checks::oversized(params) {
        return Err(OAuthError::invalid_request(format!("`{name}` is too long")).into());
    }
    let redirect_uri = checks::redirect_uri(&client, get("redirect_uri")).map_err(OAuthError::invalid_request)?.to_string();
    let now = state.now();
    let mut request = validate(&client, params, &redirect_uri, now)?;
    if dpop.is_present() {
        // RFC 9449 §10.1: a proof sent with the pushed request binds the code to its key.
        let url = state.config.endpoint(paths::PAR);
        let proof_request = ProofRequest { method: "POST", url: &url, access_token: None, nonce_required: state.config.dpop.nonce };
        let proof = dpop::verify(&state.config, state.ephemeral.as_ref(), dpop, &proof_request, now).await.map_err(OAuthError::from_dpop)?;
        if request.dpop_jkt.as_ref().is_some_and(|jkt| *jkt != proof.jkt) {
            return Err(OAuthError::new(ErrorCode::InvalidDpopProof, "dpop_jkt does not name the key of the DPoP proof").into());
        }
        request.dpop_jkt = Some(proof.jkt);
    }
    let reference = random_token(32);
    let ttl = state.config.par.request_uri_ttl;
    let pushed = Pushed { client_id: client.id.clone(), request };
    let bytes = serde_json::to_vec(&pushed).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&key(&reference), &bytes, ttl).await?;
    let body = json!({ "request_uri": format!("{REQUEST_URI_PREFIX}{reference}"), "expires_in": ttl.as_secs() });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Why a `request_uri` brought no request.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Not ours, expired, or already used.
    Unknown,
    /// Pushed by another client (and now spent).
    OtherClient,
}

/// The pushed request `request_uri` stands for, taken once (on any node): only for the client
/// that pushed it.
pub async fn take(state: &AppState, client: &Client, request_uri: &str) -> Result<Result<PendingAuthorization, Unusable>, AppError> {
    let Some(reference) = request_uri.strip_prefix(REQUEST_URI_PREFIX).filter(|r| !r.is_empty() && r.len() <= 64) else {
        return Ok(Err(Unusable::Unknown));
    };
    let Some(bytes) = state.ephemeral.take(&key(reference)).await? else { return Ok(Err(Unusable::Unknown)) };
    let pushed: Pushed = serde_json::from_slice(&bytes).map_err(|e| AppError::Internal(format!("pushed request: {e}")))?;
    if pushed.client_id != client.id {
        state.metrics.security_event("par_request_uri_other_client");
        return Ok(Err(Unusable::OtherClient));
    }
    Ok(Ok(pushed.request))
}
