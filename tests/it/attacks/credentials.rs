//! Presented credentials are always verified: a grant that does not need client authentication
//! (token exchange, where the API key authenticates) still refuses a wrong client secret.

use serde_json::Value;
use sesame::store::AuthMethod;

use crate::support::api_keys::{admin, exchange, spec, API_KEY_TOKEN_TYPE, EXCHANGE};
use crate::support::harness::Tests;
use crate::support::machine::add_machine;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("token_exchange_checks_client_credentials_it_was_sent", token_exchange_checks_client_credentials_it_was_sent);
}

async fn token_exchange_checks_client_credentials_it_was_sent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = admin(&server).generate(&spec("batch", "reports:read")).await.unwrap().key;
    let m = add_machine(&server, "Gateway", "reports:read", AuthMethod::ClientSecretBasic).await;
    let form = [("grant_type", EXCHANGE), ("subject_token", key.as_str()), ("subject_token_type", API_KEY_TOKEN_TYPE)];
    let with_basic = |secret: &str| http().post(server.url("/token")).basic_auth(&m.id, Some(secret)).form(&form).send();

    assert_eq!(exchange(&server, &key, &[]).await.status(), 200, "the key alone suffices");
    assert_eq!(with_basic(m.secret.as_deref().unwrap()).await.unwrap().status(), 200, "with the right client secret too");
    let res = with_basic("not the secret").await.unwrap();
    assert_eq!(res.status(), 401, "a wrong client secret was ignored");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
    let res = exchange(&server, &key, &[("client_id", "nobody"), ("client_secret", "guess")]).await;
    assert_eq!(res.status(), 401);
}
