//! The admin HTTP API for clients: only an admin may use it; a client it registers works at the
//! token endpoint; it refuses what the CLI refuses, with the same words; it never shows a stored
//! secret; rotation and removal take effect at once; every change is audited with the actor.

use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};
use sesame::admin::roles;
use sesame::crypto::secrets::hash_secret;
use sesame::store::{AuditEvent, AuthMethod};

use crate::cli::Cli;
use crate::support::harness::Tests;
use crate::support::machine::{add_machine, assertion, client_key, error_code, token_with_assertion, KeyedMachine, Machine};
use crate::support::sso::*;
use crate::support::{http, Backend, TestDatabase, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("the_clients_api_is_for_admins_only", the_clients_api_is_for_admins_only)
        .each_backend("a_client_registered_through_the_api_gets_tokens", a_client_registered_through_the_api_gets_tokens)
        .each_backend("a_private_key_jwt_client_registers_its_jwks_as_an_object", a_private_key_jwt_client_registers_its_jwks_as_an_object)
        .each_backend("bad_registrations_are_precise_400s", bad_registrations_are_precise_400s)
        .each_backend("rotation_and_removal_take_effect_at_once", rotation_and_removal_take_effect_at_once);
}

/// A machine client holding `sesame:admin`, and its access token.
async fn admin_token(server: &TestServer) -> (Machine, String) {
    let ops = add_machine(server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let token = client_credentials(server, &ops.id, ops.secret.as_deref().unwrap()).await;
    assert_eq!(token.status(), 200);
    let token = token.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    (ops, token)
}

async fn client_credentials(server: &TestServer, id: &str, secret: &str) -> reqwest::Response {
    http().post(server.url("/token")).basic_auth(id, Some(secret)).form(&[("grant_type", "client_credentials")]).send().await.unwrap()
}

async fn register(server: &TestServer, token: &str, body: Value) -> reqwest::Response {
    http().post(server.url("/admin/clients")).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn the_clients_api_is_for_admins_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let plain = add_machine(&server, "Plain", "reports:read", AuthMethod::ClientSecretBasic).await;
    let plain_token = client_credentials(&server, &plain.id, plain.secret.as_deref().unwrap()).await.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let body = json!({"name": "Sneaky", "grant_types": ["client_credentials"], "scope": "sesame:admin"});
    let known = plain.id.as_str();
    let calls = |token: Option<String>| {
        let requests = [
            http().get(server.url("/admin/clients")),
            http().post(server.url("/admin/clients")).json(&body),
            http().get(server.url(&format!("/admin/clients/{known}"))),
            http().delete(server.url(&format!("/admin/clients/{known}"))),
            http().post(server.url(&format!("/admin/clients/{known}/rotate-secret"))),
        ];
        async move {
            let mut statuses = Vec::new();
            for req in requests {
                let req = match &token {
                    Some(t) => req.bearer_auth(t),
                    None => req,
                };
                let res = req.send().await.unwrap();
                if res.status() == 401 {
                    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
                }
                statuses.push(res.status().as_u16());
            }
            statuses
        }
    };
    assert_eq!(calls(None).await, [401; 5], "{backend:?}: no token");
    assert_eq!(calls(Some(plain_token)).await, [403; 5], "{backend:?}: a token without sesame:admin");

    // A person: without the admin role they never get the scope; with it they do, and lose the
    // API the moment the role is taken away, token or not.
    add_user(&server, "alice").await;
    let mut spec = NewClient::new("Console");
    spec.redirect_uris = vec!["http://127.0.0.1:9/console/callback".into()];
    spec.first_party = true;
    spec.scope = Some("openid sesame:admin".into());
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let console = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() };
    let person_token = || async {
        let p = pkce();
        let callback = sign_in(&Browser::new(), &server, &authorize_url(&server, &console, &p, &[("scope", "openid sesame:admin")]), "alice").await;
        let tokens: Value = redeem(&server, &console, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
        tokens["access_token"].as_str().unwrap().to_string()
    };
    assert_eq!(calls(Some(person_token().await)).await, [403; 5], "{backend:?}: a person without the admin role");
    roles::grant(server.state.durable.as_ref(), "alice", "admin", "test", server.state.now()).await.unwrap();
    let token = person_token().await;
    let res = http().get(server.url("/admin/clients")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200, "{backend:?}: an admin person");
    roles::remove(server.state.durable.as_ref(), "alice", "admin", "test", server.state.now()).await.unwrap();
    assert_eq!(calls(Some(token)).await, [403; 5], "{backend:?}: a former admin's token");

    let mut names: Vec<String> = server.state.durable.clients().await.unwrap().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(names, ["Console", "Plain"], "{backend:?}: a refused request changed the clients");
    assert!(server.state.durable.client(known).await.unwrap().unwrap().secret_hash == Some(hash_secret(plain.secret.as_deref().unwrap())), "{backend:?}: a refused rotation happened");
}

async fn a_client_registered_through_the_api_gets_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ops, token) = admin_token(&server).await;
    let res = register(&server, &token, json!({"name": "Reports", "grant_types": ["client_credentials"], "scope": "reports:read", "auth_method": "client_secret_post", "require_dpop": false})).await;
    assert_eq!(res.status(), 201, "{backend:?}");
    let created: Value = res.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!((created["auth_method"].as_str(), created["grant_types"].clone(), created["scopes"].clone()), (Some("client_secret_post"), json!(["client_credentials"]), json!(["reports:read"])));
    assert!(created.get("secret_hash").is_none(), "{created}");

    let res = http().post(server.url("/token")).form(&[("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", secret.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 200, "{backend:?}: the registered client gets a token with its secret");
    assert_eq!(res.json::<Value>().await.unwrap()["scope"], "reports:read");

    // Listing and showing: every client, never a secret or its hash.
    let list: Value = http().get(server.url("/admin/clients")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let mut ids: Vec<&str> = list["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = [ops.id.as_str(), id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    let shown: Value = http().get(server.url(&format!("/admin/clients/{id}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["name"], "Reports");
    let hash = hex(&hash_secret(&secret));
    let mut seen: Vec<&Value> = list["clients"].as_array().unwrap().iter().collect();
    seen.push(&shown);
    for client in seen {
        let text = client.to_string();
        assert!(!text.contains(&secret) && !text.contains(ops.secret.as_deref().unwrap()) && !text.contains(&hash), "{text}");
        assert!(client.get("client_secret").is_none() && client.get("secret_hash").is_none(), "{text}");
    }

    let events = server.state.durable.recent_audit(Some(&id), 10).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "client.add" && e.caller.as_deref() == Some(ops.id.as_str())), "{backend:?}: {events:?}");
    assert!(!format!("{events:?}").contains(&secret), "the audit trail holds no secret");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn a_private_key_jwt_client_registers_its_jwks_as_an_object(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = admin_token(&server).await;
    let (key, public_jwks) = client_key("ES256");
    let jwks: Value = serde_json::from_str(&public_jwks).unwrap();
    let res = register(&server, &token, json!({"name": "Keyed", "grant_types": ["client_credentials"], "scope": "reports:read", "auth_method": "private_key_jwt", "jwks": jwks})).await;
    assert_eq!(res.status(), 201, "{backend:?}");
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["client_secret"], Value::Null, "a private_key_jwt client has no secret");
    let machine = KeyedMachine { id: created["client_id"].as_str().unwrap().to_string(), key };
    let res = token_with_assertion(&server, &assertion(&machine, &server.url("/token"), 60, "jti-api-1")).await;
    assert_eq!(res.status(), 200, "{backend:?}: the client signs in with the key it registered");
}

async fn bad_registrations_are_precise_400s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, token) = admin_token(&server).await;
    let refused = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        (status, body["error_description"].as_str().unwrap().to_string())
    };

    // The same rule, in the same words, as `sesame client add`.
    let res = register(&server, &token, json!({"name": "Billing", "grant_types": ["client_credentials"], "auth_method": "tls_client_auth"})).await;
    let (status, description) = refused(res).await;
    assert_eq!(status, 400, "{backend:?}");
    let db = TestDatabase::new(backend).await;
    let cli = Cli::new(&db);
    let stderr = cli.fails(&["client", "add", "--name", "Billing", "--grant-type", "client_credentials", "--auth-method", "tls_client_auth"], None, 1);
    assert_eq!(stderr.trim(), format!("error: {description}"), "{backend:?}: the API and the CLI disagree");

    for (body, says) in [
        (json!({"name": "X", "redirect_uris": ["http://app.example.com/cb"]}), "must use https"),
        (json!({"name": "X", "grant_types": ["password"]}), "unknown grant type `password`"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "auth_method": "private_key_jwt"}), "private_key_jwt needs --jwks-uri or --jwks"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "auth_method": "private_key_jwt", "jwks": 7}), "jwks must be a JWK Set"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "auth_method": "private_key_jwt", "jwks": {"keys": []}}), "at least one key"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "public": true, "auth_method": "client_secret_basic"}), "not both"),
        (json!({"grant_types": ["client_credentials"]}), "a client needs a name"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "client_secret": "mine"}), "unknown field `client_secret`"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "auth_method": "magic"}), "unknown variant `magic`"),
        (json!({"name": "X", "grant_types": "client_credentials"}), "invalid type"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "access_token_alg": "HS256"}), "unknown variant `HS256`"),
        (json!({"name": "X", "grant_types": ["client_credentials"], "require_par": true}), "--require-par is for clients of the authorization_code grant"),
    ] {
        let (status, description) = refused(register(&server, &token, body.clone()).await).await;
        assert_eq!(status, 400, "{backend:?}: {body}: {description}");
        assert!(description.contains(says), "{body}: {description}");
    }
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut req = http().post(server.url("/admin/clients")).bearer_auth(&token).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let (status, description) = refused(raw("{not json", Some("application/json")).await.unwrap()).await;
    assert_eq!(status, 400, "{description}");
    let (status, description) = refused(raw("{\"name\": \"X\"}", None).await.unwrap()).await;
    assert_eq!(status, 400, "no Content-Type: {description}");
    assert!(description.contains("Content-Type"), "{description}");

    // A body over the limit is refused before it is parsed.
    let huge = json!({"name": "X", "grant_types": ["client_credentials"], "scope": "a ".repeat(40_000)});
    let (status, description) = refused(register(&server, &token, huge).await).await;
    assert_eq!(status, 413, "{backend:?}: {description}");
    assert!(description.contains("larger than"), "{description}");

    let names: Vec<String> = server.state.durable.clients().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["Ops"], "{backend:?}: a refused registration created a client");
}

async fn rotation_and_removal_take_effect_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ops, token) = admin_token(&server).await;
    let created: Value = register(&server, &token, json!({"name": "Batch", "grant_types": ["client_credentials"], "scope": "reports:read"})).await.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_string();
    let old = created["client_secret"].as_str().unwrap().to_string();
    // The token endpoint now holds the client in its cache.
    assert_eq!(client_credentials(&server, &id, &old).await.status(), 200);

    let res = http().post(server.url(&format!("/admin/clients/{id}/rotate-secret"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200, "{backend:?}");
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(rotated["client_id"], id.as_str());
    let new = rotated["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(error_code(client_credentials(&server, &id, &old).await).await, (401, "invalid_client".to_string()), "{backend:?}: the old secret still worked");
    assert_eq!(client_credentials(&server, &id, &new).await.status(), 200, "{backend:?}: the new secret");

    let res = http().delete(server.url(&format!("/admin/clients/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 204, "{backend:?}");
    assert_eq!(error_code(client_credentials(&server, &id, &new).await).await, (401, "invalid_client".to_string()), "{backend:?}: the removed client still got a token");
    for res in [
        http().delete(server.url(&format!("/admin/clients/{id}"))).bearer_auth(&token).send().await.unwrap(),
        http().get(server.url(&format!("/admin/clients/{id}"))).bearer_auth(&token).send().await.unwrap(),
        http().post(server.url(&format!("/admin/clients/{id}/rotate-secret"))).bearer_auth(&token).send().await.unwrap(),
    ] {
        assert_eq!(res.status(), 404, "{backend:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
        assert!(body["error_description"].as_str().unwrap().contains(&id), "{body}");
    }
    let kinds: Vec<(String, Option<String>)> = server.state.durable.recent_audit(Some(&id), 10).await.unwrap().into_iter().map(|e| (e.kind, e.caller)).collect();
    let by_ops = |kind: &str| (kind.to_string(), Some(ops.id.clone()));
    assert_eq!(kinds, [by_ops("client.add"), by_ops("client.rotate_secret"), by_ops("client.remove")], "{backend:?}");

    // A client without a secret has none to rotate.
    let public: Value = register(&server, &token, json!({"name": "Tool", "public": true, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]})).await.json().await.unwrap();
    let res = http().post(server.url(&format!("/admin/clients/{}/rotate-secret", public["client_id"].as_str().unwrap()))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 400, "{backend:?}");

    // One client id in 64 starts with `-`: such ids are paths like any other.
    let mut dashed = clients::validate(&NewClient { grant_types: vec!["client_credentials".into()], scope: Some("reports:read".into()), ..NewClient::new("Dashed") }).unwrap();
    dashed.id = "-dashed_id".into();
    dashed.secret_hash = Some(hash_secret("s"));
    let event = AuditEvent { id: 0, at: 0, kind: "client.add".into(), subject: dashed.id.clone(), caller: Some("test".into()), result: "ok".into(), reason: None, details: json!({}) };
    server.state.durable.insert_client(&dashed, &event).await.unwrap();
    let path = server.url("/admin/clients/-dashed_id");
    let shown: Value = http().get(&path).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["client_id"], "-dashed_id");
    let res = http().post(format!("{path}/rotate-secret")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200, "{backend:?}");
    let secret = res.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_string();
    assert_eq!(client_credentials(&server, "-dashed_id", &secret).await.status(), 200, "{backend:?}");
    assert_eq!(http().delete(&path).bearer_auth(&token).send().await.unwrap().status(), 204);
    assert!(server.state.durable.client("-dashed_id").await.unwrap().is_none());
}
