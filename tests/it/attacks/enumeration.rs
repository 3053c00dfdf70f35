//! Client enumeration: a failed client authentication says the same thing whether the client
//! exists, how it authenticates, or which of its keys is missing.

use serde_json::Value;
use sesame::store::AuthMethod;

use crate::support::harness::Tests;
use crate::support::machine::add_machine;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("failed_client_authentication_does_not_reveal_clients", failed_client_authentication_does_not_reveal_clients);
}

async fn failed_client_authentication_does_not_reveal_clients(backend: Backend) {
    let server = TestServer::start(backend).await;
    let basic = add_machine(&server, "Basic", "api", AuthMethod::ClientSecretBasic).await;
    let post = add_machine(&server, "Post", "api", AuthMethod::ClientSecretPost).await;
    let token = |form: Vec<(&'static str, String)>, basic_auth: Option<(String, String)>| {
        let mut req = http().post(server.url("/token")).form(&form);
        if let Some((id, secret)) = basic_auth {
            req = req.basic_auth(id, Some(secret));
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body["error"].as_str().unwrap().to_string(), body["error_description"].as_str().unwrap().to_string())
        }
    };
    let cc = || vec![("grant_type", "client_credentials".to_string())];
    let answers = [
        ("unknown client", token(cc(), Some(("nobody".into(), "x".into()))).await),
        ("wrong secret", token(cc(), Some((basic.id.clone(), "wrong".into()))).await),
        ("basic client sent as post", token([cc(), vec![("client_id", basic.id.clone()), ("client_secret", basic.secret.clone().unwrap())]].concat(), None).await),
        ("post client sent as basic", token(cc(), Some((post.id.clone(), post.secret.clone().unwrap()))).await),
        ("known client, no credentials", token([cc(), vec![("client_id", basic.id.clone())]].concat(), None).await),
        ("unknown client, no credentials", token([cc(), vec![("client_id", "nobody".to_string())]].concat(), None).await),
    ];
    for (case, answer) in &answers {
        assert_eq!(answer, &(401, "invalid_client".to_string(), "client authentication failed".to_string()), "{case}");
    }
}
