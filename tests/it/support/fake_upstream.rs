//! A small OpenID Connect provider of our own, for what a real one will not do on request: sign
//! an ID token with the wrong nonce, issuer or audience, an expired one, or one with a key it
//! does not publish. It checks what a provider must (the client's secret, the redirect URI,
//! PKCE S256), so a relying party that skips a step fails here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sesame::crypto::alg::SigningAlg;
use sesame::crypto::keys::{generate, SigningKeyPair};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "sesame-at-fake";
pub const CLIENT_SECRET: &str = "fake-upstream-secret";

/// How the next ID token is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    WrongNonce,
    WrongIssuer,
    WrongAudience,
    Expired,
    /// Signed with a key the JWKS does not hold.
    UnknownKey,
    /// The authorization response names another issuer (RFC 9207 `iss`).
    WrongIssParameter,
}

struct Pending {
    nonce: String,
    challenge: String,
    redirect_uri: String,
    claims: Value,
}

struct Inner {
    key: SigningKeyPair,
    jwk: Value,
    stranger: SigningKeyPair,
    /// The claims of whoever signs in next (beside `sub`, a claim of its own).
    person: Value,
    tamper: Tamper,
    codes: HashMap<String, Pending>,
    tokens: HashMap<String, Value>,
    /// The query of the last authorization request.
    last_authorize: HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakeUpstream {
    pub issuer: String,
    inner: Arc<Mutex<Inner>>,
}

fn key_pair() -> (SigningKeyPair, Value) {
    let generated = generate(SigningAlg::ES256).unwrap();
    (SigningKeyPair::from_pkcs8(&generated.kid, SigningAlg::ES256, &generated.pkcs8_der).unwrap(), generated.public_jwk)
}

impl FakeUpstream {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let (key, jwk) = key_pair();
        let (stranger, _) = key_pair();
        let inner = Inner { key, jwk, stranger, person: json!({"sub": "nobody"}), tamper: Tamper::None, codes: HashMap::new(), tokens: HashMap::new(), last_authorize: HashMap::new() };
        let fake = Self { issuer, inner: Arc::new(Mutex::new(inner)) };
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        fake
    }

    /// Who signs in next: `claims` must hold `sub`.
    pub fn sign_in_as(&self, claims: Value) {
        self.inner.lock().unwrap().person = claims;
    }

    pub fn tamper(&self, how: Tamper) {
        self.inner.lock().unwrap().tamper = how;
    }

    pub fn last_authorize(&self, name: &str) -> Option<String> {
        self.inner.lock().unwrap().last_authorize.get(name).cloned()
    }

    /// The `[[upstream]]` table of this provider, as sesame.toml would hold it (plus `extra`).
    pub fn config_toml(&self, id: &str, extra: &str) -> String {
        format!(
            "[[upstream]]\nid = \"{id}\"\ndisplay_name = \"Fake Corp\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nscopes = [\"openid\", \"profile\", \"email\", \"groups\"]\nallow_private_networks = true\n{extra}",
            self.issuer
        )
    }
}

async fn discovery(State(fake): State<FakeUpstream>) -> Json<Value> {
    let i = &fake.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn jwks(State(fake): State<FakeUpstream>) -> Json<Value> {
    Json(json!({"keys": [fake.inner.lock().unwrap().jwk.clone()]}))
}

async fn authorize(State(fake): State<FakeUpstream>, Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) || q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = sesame::crypto::secrets::random_token(16);
    let mut inner = fake.inner.lock().unwrap();
    let pending = Pending {
        nonce: q.get("nonce").cloned().unwrap_or_default(),
        challenge: q.get("code_challenge").cloned().unwrap_or_default(),
        redirect_uri: q.get("redirect_uri").cloned().unwrap_or_default(),
        claims: inner.person.clone(),
    };
    let iss = if inner.tamper == Tamper::WrongIssParameter { "http://mix-up.example".to_string() } else { fake.issuer.clone() };
    let mut back = url::Url::parse(&pending.redirect_uri).unwrap();
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", q.get("state").map(String::as_str).unwrap_or_default()).append_pair("iss", &iss);
    inner.codes.insert(code, pending);
    inner.last_authorize = q;
    Redirect::to(back.as_str()).into_response()
}

fn oauth_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn token(State(fake): State<FakeUpstream>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let basic = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    let Some(pending) = inner.codes.remove(form.get("code").map(String::as_str).unwrap_or_default()) else { return oauth_error("invalid_grant") };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != pending.challenge || form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return oauth_error("invalid_grant");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut claims = pending.claims.clone();
    let (mut iss, mut aud, mut nonce, mut exp) = (fake.issuer.clone(), CLIENT_ID.to_string(), pending.nonce.clone(), now + 300);
    match inner.tamper {
        Tamper::WrongNonce => nonce = "a-nonce-from-another-sign-in".into(),
        Tamper::WrongIssuer => iss = "http://evil.example".into(),
        Tamper::WrongAudience => aud = "some-other-client".into(),
        Tamper::Expired => exp = now - 600,
        _ => {}
    }
    for (k, v) in [("iss", json!(iss)), ("aud", json!(aud)), ("nonce", json!(nonce)), ("exp", json!(exp)), ("iat", json!(now - 1))] {
        claims[k] = v;
    }
    let signer = if inner.tamper == Tamper::UnknownKey { &inner.stranger } else { &inner.key };
    let id_token = sesame::crypto::jwt::sign(signer, "JWT", &claims).unwrap();
    let access_token = sesame::crypto::secrets::random_token(24);
    inner.tokens.insert(access_token.clone(), pending.claims);
    Json(json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token})).into_response()
}

async fn userinfo(State(fake): State<FakeUpstream>, headers: HeaderMap) -> Response {
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default().to_string();
    match fake.inner.lock().unwrap().tokens.get(&presented) {
        Some(claims) => Json(claims.clone()).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
