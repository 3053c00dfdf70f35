//! Helpers for API key tests: admin operations on a test server, and the token exchange.

use sesame::admin::api_keys::{Admin, NewApiKey};

use crate::support::{http, TestServer};

pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const API_KEY_TOKEN_TYPE: &str = "urn:sesame:params:oauth:token-type:api_key";

/// Admin operations on `server`'s stores, at its current time.
pub fn admin(server: &TestServer) -> Admin<'_> {
    Admin { config: &server.state.config, durable: server.state.durable.as_ref(), ephemeral: server.state.ephemeral.as_ref(), actor: "test", now: server.state.now() }
}

/// A prod key named `name` with `scope`.
pub fn spec(name: &str, scope: &str) -> NewApiKey {
    NewApiKey { name: name.into(), scope: Some(scope.into()), env: Some("prod".into()), ..NewApiKey::default() }
}

/// Exchanges an API key for a JWT at the token endpoint.
pub async fn exchange(server: &TestServer, key: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", EXCHANGE), ("subject_token", key), ("subject_token_type", API_KEY_TOKEN_TYPE)];
    form.extend_from_slice(extra);
    http().post(server.url("/token")).form(&form).send().await.unwrap()
}
