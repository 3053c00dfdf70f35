//! Helpers for machine-client tests: registering clients and signing client assertions.

use sesame::admin::clients::{self, NewClient};
use sesame::crypto::keys::{generate, SigningKeyPair};
use sesame::store::AuthMethod;

use crate::support::TestServer;

pub struct Machine {
    pub id: String,
    pub secret: Option<String>,
}

pub async fn add_machine(server: &TestServer, name: &str, scope: &str, method: AuthMethod) -> Machine {
    let mut spec = NewClient::new(name);
    spec.grant_types = vec!["client_credentials".into()];
    spec.scope = Some(scope.into());
    spec.auth_method = method;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    Machine { id: created.client.id, secret: created.client_secret }
}

pub struct KeyedMachine {
    pub id: String,
    pub key: SigningKeyPair,
}

/// A client's own key pair for `private_key_jwt`; `alg` as a client would name it.
pub fn client_key(alg: &str) -> (SigningKeyPair, String) {
    let alg = alg.parse().unwrap();
    let generated = generate(alg).unwrap();
    let pair = SigningKeyPair::from_pkcs8(&generated.kid, alg, &generated.pkcs8_der).unwrap();
    (pair, serde_json::json!({"keys": [generated.public_jwk]}).to_string())
}

/// A private_key_jwt client with its key registered inline (`jwks`) or at `jwks_uri`.
pub async fn add_keyed_machine(server: &TestServer, jwks_uri: Option<String>, key: Option<(SigningKeyPair, String)>) -> KeyedMachine {
    let (key, public_jwks) = key.unwrap_or_else(|| client_key("ES256"));
    let mut spec = NewClient::new("Keyed");
    spec.grant_types = vec!["client_credentials".into()];
    spec.scope = Some("reports:read".into());
    spec.auth_method = AuthMethod::PrivateKeyJwt;
    match jwks_uri {
        Some(uri) => spec.jwks_uri = Some(uri),
        None => spec.jwks = Some(public_jwks),
    }
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    KeyedMachine { id: created.client.id, key }
}

pub fn assertion(m: &KeyedMachine, aud: &str, lifetime: i64, jti: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = serde_json::json!({"iss": m.id, "sub": m.id, "aud": aud, "iat": now, "exp": now + lifetime, "jti": jti});
    sesame::crypto::jwt::sign(&m.key, "JWT", &claims).unwrap()
}

pub async fn token_with_assertion(server: &TestServer, assertion: &str) -> reqwest::Response {
    crate::support::http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string())
}

/// Status, `error` and `error_description` of a refused request.
pub async fn error_body(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_string(), body["error_description"].as_str().unwrap_or_default().to_string())
}
