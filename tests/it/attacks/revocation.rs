//! Revocation that holds: a revoked access token stays revoked when the ephemeral store loses
//! its data (the durable store is the record), and tokens bought with an API key die with it.

use std::sync::Arc;

use serde_json::Value;
use sesame::clock::SystemClock;
use sesame::store::AuthMethod;
use sesame::tokens::access::{self, AccessTokenClaims};

use crate::support::api_keys::{admin, exchange, spec};
use crate::support::harness::Tests;
use crate::support::machine::{add_machine, error_code};
use crate::support::tokens::signed_in_with_refresh;
use crate::support::{forget_redis_keyspace, http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_revoked_access_token_stays_revoked_when_the_ephemeral_store_forgets", a_revoked_access_token_stays_revoked_when_the_ephemeral_store_forgets)
        .each_backend("tokens_bought_with_an_api_key_are_for_listed_audiences_and_die_with_the_key", tokens_bought_with_an_api_key_are_for_listed_audiences_and_die_with_the_key);
}

fn claims_of(token: &str) -> AccessTokenClaims {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn a_revoked_access_token_stays_revoked_when_the_ephemeral_store_forgets(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = signed_in_with_refresh(&server).await;
    let userinfo = || async { http().get(server.url("/userinfo")).bearer_auth(&session.access).send().await.unwrap().status().as_u16() };
    assert_eq!(userinfo().await, 200);
    let res = http().post(server.url("/revoke")).basic_auth(&session.app.id, session.app.secret.as_ref()).form(&[("token", session.access.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(userinfo().await, 401);

    let claims = claims_of(&session.access);
    match backend {
        Backend::External => {
            // Redis restarted without persistence: every key of the cluster is gone.
            forget_redis_keyspace(&server.redis_prefix).await;
            assert_eq!(userinfo().await, 401, "a revoked token came back to life after Redis lost its data");
        }
        Backend::Embedded => {
            // A restarted node: the same database, an empty in-process store.
            let restarted = TestServer::start_on((*server.state.config).clone(), Arc::new(SystemClock), None).await;
            assert!(access::is_denied(&restarted.state, &claims).await.unwrap(), "a revoked token came back to life on a restarted node");
            let other = AccessTokenClaims { jti: "another-token".into(), ..claims };
            assert!(!access::is_denied(&restarted.state, &other).await.unwrap(), "other tokens are not denied");
        }
    }
}

async fn tokens_bought_with_an_api_key_are_for_listed_audiences_and_die_with_the_key(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.api_keys.exchange_audiences = vec!["https://reports.example.com/".into()]).await;
    let issued = admin(&server).generate(&spec("batch", "reports:read")).await.unwrap();
    let rs = add_machine(&server, "Reports", "reports:read", AuthMethod::ClientSecretBasic).await;
    let introspect = |token: String| {
        let req = http().post(server.url("/introspect")).basic_auth(&rs.id, rs.secret.as_ref()).form(&[("token", token)]);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["active"].as_bool().unwrap() }
    };
    for (name, target) in [("resource", "https://evil.example/"), ("audience", "https://evil.example/"), ("audience", "https://reports.example.com")] {
        let (status, code) = error_code(exchange(&server, &issued.key, &[(name, target)]).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_target"), "{backend:?}: {name}={target} is not listed");
    }
    let bought = |extra: &'static [(&'static str, &'static str)]| {
        let f = exchange(&server, &issued.key, extra);
        async move {
            let res = f.await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
        }
    };
    let for_reports = bought(&[("resource", "https://reports.example.com/")]).await;
    let default = bought(&[]).await;
    assert!(introspect(for_reports.clone()).await && introspect(default.clone()).await);

    admin(&server).revoke(&issued.id).await.unwrap();
    assert!(!introspect(for_reports).await, "{backend:?}: a token bought with a revoked key is still active");
    assert!(!introspect(default.clone()).await, "{backend:?}");
    if backend == Backend::External {
        forget_redis_keyspace(&server.redis_prefix).await;
        assert!(!introspect(default).await, "{backend:?}: the key's tokens came back after Redis lost its data");
    }
}
