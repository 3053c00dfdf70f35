//! Token introspection (RFC 7662) for resource servers: access tokens, refresh tokens (only to
//! their holder), API keys with network binding, and who may ask.

use std::time::Duration;

use oauth2::{AccessToken, TokenIntrospectionResponse};
use serde_json::Value;
use sesame::admin::api_keys::NewApiKey;
use sesame::store::AuthMethod;

use crate::support::api_keys::{admin, spec};
use crate::support::harness::Tests;
use crate::support::machine::{add_machine, error_code, Machine};
use crate::support::sso::{add_client, TestClient};
use crate::support::tokens::*;
use crate::support::{eventually, http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("introspection_for_resource_servers", introspection_for_resource_servers)
        .test("introspection_can_be_narrowed_to_listed_clients", introspection_can_be_narrowed_to_listed_clients)
        .each_backend("introspection_with_network_binding", introspection_with_network_binding);
}

async fn introspection_for_resource_servers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let s = signed_in_with_refresh(&server).await;
    let rs = add_machine(&server, "Resource Server", "introspect", AuthMethod::ClientSecretBasic).await;
    let rs_client = oauth2_client(&server, &rs.id, rs.secret.as_ref().unwrap());
    let answer = rs_client.introspect(&AccessToken::new(s.access.clone())).set_token_type_hint("access_token").request_async(&plain()).await.unwrap();
    assert!(answer.active(), "{backend:?}");
    assert_eq!(answer.client_id().unwrap().as_str(), s.app.id);
    assert!(answer.scopes().unwrap().iter().any(|sc| sc.as_str() == "openid"));
    assert!(answer.exp().is_some() && answer.sub().is_some());

    // The hint is not trusted: an access token under a refresh_token hint is still found.
    let rs_as = TestClient { id: rs.id.clone(), secret: rs.secret.clone(), redirect_uri: String::new() };
    let res = http().post(server.url("/introspect")).basic_auth(&rs.id, rs.secret.as_ref()).form(&[("token", s.access.as_str()), ("token_type_hint", "refresh_token")]).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
    assert_eq!(introspect(&server, &rs_as, "garbage").await, serde_json::json!({"active": false}));
    assert_eq!(introspect(&server, &rs_as, "a.b.c").await, serde_json::json!({"active": false}));

    // Callers must authenticate...
    let res = http().post(server.url("/introspect")).form(&[("token", s.access.as_str())]).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_client".into()));
    // ...and public clients may not introspect, even though they identify themselves.
    let spa = add_client(&server, "Spa", true, true).await;
    assert!(spa.secret.is_none(), "a public client");
    let res = http().post(server.url("/introspect")).form(&[("client_id", spa.id.as_str()), ("token", s.access.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 401, "{backend:?}: a public client introspected");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "public clients cannot introspect");
    assert!(body.get("active").is_none(), "nothing about the token is told: {body}");
}

async fn introspection_can_be_narrowed_to_listed_clients() {
    let server = TestServer::start_with(Backend::Embedded, |c| c.introspection.allowed_clients = vec!["only-this-one".into()]).await;
    let rs = add_machine(&server, "RS", "x", AuthMethod::ClientSecretBasic).await;
    let res = http().post(server.url("/introspect")).basic_auth(&rs.id, rs.secret.as_ref()).form(&[("token", "x")]).send().await.unwrap();
    assert_eq!(error_code(res).await.1, "unauthorized_client");
}

async fn introspect_key(server: &TestServer, caller: &Machine, key: &str, client_ip: Option<&str>) -> Value {
    let mut form = vec![("token", key), ("token_type_hint", "api_key")];
    if let Some(ip) = client_ip {
        form.push(("client_ip", ip));
    }
    http().post(server.url("/introspect")).basic_auth(&caller.id, caller.secret.as_ref()).form(&form).send().await.unwrap().json().await.unwrap()
}

async fn introspection_with_network_binding(backend: Backend) {
    let server = TestServer::start(backend).await;
    let rs = add_machine(&server, "RS", "x", AuthMethod::ClientSecretBasic).await;
    let bound = admin(&server).generate(&NewApiKey { cidrs: vec!["10.0.0.0/8".into()], ..spec("bound", "reports:read reports:write") }).await.unwrap();
    let answer = introspect_key(&server, &rs, &bound.key, Some("10.1.2.3")).await;
    assert_eq!(answer["active"], true, "{backend:?}");
    assert_eq!(answer["sub"], bound.id.as_str());
    assert_eq!(answer["owner"], "bound");
    assert_eq!(answer["env"], "prod");
    assert_eq!(answer["scope"], "reports:read reports:write");
    assert!(answer["exp"].as_i64().is_some());
    assert_eq!(introspect_key(&server, &rs, &bound.key, Some("192.168.1.1")).await, serde_json::json!({"active": false}));
    let res = http().post(server.url("/introspect")).basic_auth(&rs.id, rs.secret.as_ref()).form(&[("token", bound.key.as_str()), ("client_ip", "not-an-ip")]).send().await.unwrap();
    assert_eq!(error_code(res).await, (400, "invalid_request".into()), "a malformed client_ip");
    admin(&server).revoke(&bound.id).await.unwrap();
    // Once the server's cache has heard of the revocation (its own invalidation message, or the
    // 1 s cache lifetime at the latest), the key is inactive.
    eventually(Duration::from_secs(3), "the revoked key to introspect inactive", || async {
        (introspect_key(&server, &rs, &bound.key, Some("10.1.2.3")).await == serde_json::json!({"active": false})).then_some(())
    })
    .await;
}
