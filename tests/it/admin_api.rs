//! The admin HTTP API for API keys: only a token with the `sesame:admin` scope may use it; what
//! it does takes effect (a revoked key stops verifying) and is audited with the actor.

use serde_json::{json, Value};
use sesame::api_keys::{self, Rejection};
use sesame::store::AuthMethod;

use crate::support::harness::Tests;
use crate::support::machine::{add_machine, Machine};
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("the_admin_api_needs_the_admin_scope", the_admin_api_needs_the_admin_scope);
}

async fn the_admin_api_needs_the_admin_scope(backend: Backend) {
    let server = TestServer::start(backend).await;
    let root = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let plain = add_machine(&server, "Plain", "reports:read", AuthMethod::ClientSecretBasic).await;
    let token_of = |m: &Machine| http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&[("grant_type", "client_credentials")]).send();
    let admin_token = token_of(&root).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let plain_token = token_of(&plain).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();

    let res = http().get(server.url("/admin/api-keys")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    // The caller is checked before its body is read: an anonymous malformed body learns nothing.
    for body in ["{not json", "{\"name\": 5}"] {
        let res = http().post(server.url("/admin/api-keys")).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(res.status(), 401, "{body}");
        let res = http().post(server.url("/admin/api-keys")).bearer_auth(&plain_token).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(res.status(), 403, "{body}");
    }
    let res = http().get(server.url("/admin/api-keys")).bearer_auth(&plain_token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "insufficient_scope");
    let res = http().post(server.url("/admin/api-keys")).bearer_auth(&plain_token).json(&json!({"name": "sneaky"})).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(server.state.durable.api_keys().await.unwrap().is_empty(), "{backend:?}: a refused request created a key");

    let res = http().post(server.url("/admin/api-keys")).bearer_auth(&admin_token).json(&json!({"name": "reporting", "scope": "reports:read", "env": "staging", "expires_in": "30d", "cidrs": ["10.0.0.0/8"]})).send().await.unwrap();
    assert_eq!(res.status(), 201, "{backend:?}");
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ses_staging_"));
    let bad = http().post(server.url("/admin/api-keys")).bearer_auth(&admin_token).json(&json!({"name": "x", "env": "moon"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"], "invalid_request");
    assert!(bad["error_description"].as_str().unwrap().contains("env must be one of"), "{bad}");
    // What the extractors refuse is answered in the same JSON shape, never plain text.
    let malformed = [
        http().post(server.url("/admin/api-keys")).bearer_auth(&admin_token).header("content-type", "application/json").body("{not json"),
        http().post(server.url("/admin/api-keys")).bearer_auth(&admin_token).json(&json!({"name": 5})),
        http().post(server.url("/admin/api-keys/test")).bearer_auth(&admin_token).json(&json!({"nokey": true})),
        http().post(server.url("/admin/api-keys/x/rotate")).bearer_auth(&admin_token).json(&json!({"grace": "soon"})),
        http().get(server.url("/admin/api-keys/x/usage?since=yesterday")).bearer_auth(&admin_token),
    ];
    for request in malformed {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), 400, "{backend:?}: {}", res.url());
        let body: Value = res.json().await.expect("a JSON error body");
        assert_eq!(body["error"], "invalid_request", "{body}");
    }

    let list: Value = http().get(server.url("/admin/api-keys")).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["keys"].as_array().unwrap().len(), 1, "the refused requests created nothing: {list}");
    assert_eq!(list["keys"][0]["name"], "reporting");
    assert!(!list.to_string().contains(&key), "list never shows a key");

    let test_key = |key: String| http().post(server.url("/admin/api-keys/test")).bearer_auth(&admin_token).json(&json!({"key": key})).send();
    let tested: Value = test_key(key.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(tested["valid"], true);
    let id = created["id"].as_str().unwrap();
    let rotated: Value = http().post(server.url(&format!("/admin/api-keys/{id}/rotate"))).bearer_auth(&admin_token).json(&json!({"grace": "1h"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(rotated["replaces"], id);
    let successor = rotated["key"].as_str().unwrap().to_string();
    let successor_id = rotated["id"].as_str().unwrap().to_string();
    assert_eq!(test_key(successor.clone()).await.unwrap().json::<Value>().await.unwrap()["valid"], true);

    // Revoking the successor: the answer names it, and it stops verifying everywhere.
    let res = http().post(server.url(&format!("/admin/api-keys/{successor_id}/revoke"))).bearer_auth(&admin_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"id": successor_id, "revoked": true}));
    // The revoking node drops its cached copy before it answers; other nodes on the bus message.
    let tested: Value = test_key(successor.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(tested["reason"], "revoked", "{backend:?}: {tested}");
    assert_eq!(api_keys::verify(&server.state, &successor, None).await.unwrap().unwrap_err(), Rejection::Revoked);
    assert_eq!(test_key(key.clone()).await.unwrap().json::<Value>().await.unwrap()["valid"], true, "the old key, within its grace, is untouched");
    let list: Value = http().get(server.url("/admin/api-keys")).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
    let state_of = |id: &str| list["keys"].as_array().unwrap().iter().find(|k| k["id"] == id).map(|k| k["state"].clone());
    assert_eq!(state_of(&successor_id), Some(json!("revoked")));
    assert_eq!(state_of(id), Some(json!("rotating")));

    // Revoking again, or a key that never existed: 404, saying so.
    for missing in [successor_id.as_str(), "nope"] {
        let res = http().post(server.url(&format!("/admin/api-keys/{missing}/revoke"))).bearer_auth(&admin_token).send().await.unwrap();
        assert_eq!(res.status(), 404, "{missing}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
        assert!(body["error_description"].as_str().unwrap().contains(missing), "{body}");
    }
    // A plain token cannot revoke.
    let res = http().post(server.url(&format!("/admin/api-keys/{id}/revoke"))).bearer_auth(&plain_token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(api_keys::verify(&server.state, &key, None).await.unwrap().is_ok(), "{backend:?}: a refused revocation took effect");

    let events = server.state.durable.recent_audit(Some(id), 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "api_key.rotate" && e.caller.as_deref() == Some(root.id.as_str())), "admin actions are audited with the actor");
    let events = server.state.durable.recent_audit(Some(&successor_id), 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "api_key.revoke" && e.caller.as_deref() == Some(root.id.as_str())), "{events:?}");
}
