//! API keys: verification rules, introspection, token exchange, admin API, audit, and
//! revocation reaching every node.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sesame::admin::api_keys::{Admin, NewApiKey};
use sesame::apikeys::{self, Rejection};
use sesame::clock::{Clock, ManualClock};
use sesame::crypto::secrets::hash_secret;
use sesame::store::AuthMethod;

use crate::machine_support::{add_machine, error_code};
use crate::support::{backends, http, test_config, Backend, TestDatabase, TestServer};

fn admin(server: &TestServer) -> Admin<'_> {
    Admin { config: &server.state.config, durable: server.state.durable.as_ref(), ephemeral: Some(server.state.ephemeral.as_ref()), actor: "test", now: server.state.now() }
}

fn spec(name: &str, scope: &str) -> NewApiKey {
    NewApiKey { name: name.into(), scope: Some(scope.into()), env: Some("prod".into()), ..NewApiKey::default() }
}

async fn exchange(server: &TestServer, key: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", key),
        ("subject_token_type", "urn:sesame:params:oauth:token-type:api_key"),
    ];
    form.extend_from_slice(extra);
    http().post(server.url("/token")).form(&form).send().await.unwrap()
}

async fn introspect_key(server: &TestServer, caller: &crate::machine_support::Machine, key: &str, client_ip: Option<&str>) -> Value {
    let mut form = vec![("token", key), ("token_type_hint", "api_key")];
    if let Some(ip) = client_ip {
        form.push(("client_ip", ip));
    }
    http().post(server.url("/introspect")).basic_auth(&caller.id, caller.secret.as_ref()).form(&form).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_bad_checksum_is_refused_without_a_lookup() {
    let server = TestServer::start(Backend::Embedded).await;
    let issued = admin(&server).generate(&spec("svc", "a")).await.unwrap();
    let mut typo = issued.key.clone().into_bytes();
    typo[15] = if typo[15] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(apikeys::verify(&server.state, &typo, None).await.unwrap().unwrap_err(), Rejection::Malformed);
    assert!(server.state.api_key_cache.get(&hash_secret(&typo)).is_none(), "the store was consulted for a malformed key");
    // A well-formed key that does not exist is looked up (and the miss cached).
    let stranger = sesame::apikeys::format::generate("prod");
    assert_eq!(apikeys::verify(&server.state, &stranger, None).await.unwrap().unwrap_err(), Rejection::Unknown);
    assert_eq!(server.state.api_key_cache.get(&hash_secret(&stranger)), Some(None));
    assert!(apikeys::verify(&server.state, &issued.key, None).await.unwrap().is_ok());
}

#[tokio::test]
async fn expiry_and_rotation_grace_follow_the_clock() {
    for backend in backends() {
        let clock = Arc::new(ManualClock::new(1_900_000_000));
        let db = TestDatabase::new(backend).await;
        let mut config = test_config(backend);
        config.database_url = db.url.clone();
        config.api_keys.cache_ttl = Duration::ZERO;
        let server = TestServer::start_on(config, clock.clone(), Some(db)).await;
        let ops = |now| Admin { now, ..admin(&server) };

        let short = ops(clock.now()).generate(&NewApiKey { expires_in: Some(Duration::from_secs(3600)), ..spec("short", "a") }).await.unwrap();
        assert!(apikeys::verify(&server.state, &short.key, None).await.unwrap().is_ok());
        let too_long = ops(clock.now()).generate(&NewApiKey { expires_in: Some(Duration::from_secs(100 * 86_400)), ..spec("long", "a") }).await;
        assert!(too_long.is_err(), "prod keys live at most 90 days");

        let old = ops(clock.now()).generate(&spec("rotating", "a")).await.unwrap();
        let new = ops(clock.now()).rotate(&old.id, Duration::from_secs(7 * 86_400)).await.unwrap();
        clock.advance(3 * 86_400);
        assert!(apikeys::verify(&server.state, &old.key, None).await.unwrap().is_ok(), "{backend:?}: old key within grace");
        assert!(apikeys::verify(&server.state, &new.key, None).await.unwrap().is_ok());
        assert_eq!(apikeys::verify(&server.state, &short.key, None).await.unwrap().unwrap_err(), Rejection::Expired);
        clock.advance(5 * 86_400);
        assert_eq!(apikeys::verify(&server.state, &old.key, None).await.unwrap().unwrap_err(), Rejection::Superseded, "{backend:?}");
        assert!(apikeys::verify(&server.state, &new.key, None).await.unwrap().is_ok());
        assert!(ops(clock.now()).rotate(&old.id, Duration::ZERO).await.is_err(), "a rotated key cannot be rotated again");
    }
}

#[tokio::test]
async fn introspection_with_network_binding() {
    for backend in backends() {
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
        admin(&server).revoke(&bound.id).await.unwrap();
        assert_eq!(introspect_key(&server, &rs, &bound.key, Some("10.1.2.3")).await, serde_json::json!({"active": false}), "revoked");
    }
}

#[tokio::test]
async fn exchange_for_a_jwt_that_verifies_with_the_jwks() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let issued = admin(&server).generate(&spec("batch", "reports:read reports:write")).await.unwrap();
        let res = exchange(&server, &issued.key, &[("scope", "reports:read"), ("resource", "https://reports.example.com/")]).await;
        assert_eq!(res.status(), 200, "{backend:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
        let token = body["access_token"].as_str().unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = http().get(server.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&["https://reports.example.com/"]);
        validation.set_issuer(&[&server.base]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims;
        assert_eq!(claims["sub"], issued.id.as_str());
        assert_eq!(claims["scope"], "reports:read");
        assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300, "short-lived");

        assert_eq!(error_code(exchange(&server, &issued.key, &[("scope", "admin")]).await).await.1, "invalid_scope");
        assert_eq!(error_code(exchange(&server, "ses_prod_nope_000000", &[]).await).await.1, "invalid_grant");
        let res = http().post(server.url("/token")).form(&[("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"), ("subject_token", issued.key.as_str()), ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")]).send().await.unwrap();
        assert_eq!(error_code(res).await.1, "invalid_request");
    }
}

#[tokio::test]
async fn exchange_enforces_networks_through_trusted_proxies_and_rate_limits() {
    let server = TestServer::start_with(Backend::Embedded, |c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let bound = admin(&server).generate(&NewApiKey { cidrs: vec!["10.0.0.0/8".into()], rate_limit_per_minute: Some(2), ..spec("bound", "a") }).await.unwrap();
    assert_eq!(error_code(exchange(&server, &bound.key, &[]).await).await.1, "invalid_grant", "127.0.0.1 is outside 10/8");
    let from = |ip: &'static str| {
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"), ("subject_token", bound.key.as_str()), ("subject_token_type", "urn:sesame:params:oauth:token-type:api_key")];
        http().post(server.url("/token")).header("x-forwarded-for", ip).form(&form).send()
    };
    assert_eq!(from("10.9.8.7").await.unwrap().status(), 200, "behind a trusted proxy");
    assert_eq!(from("10.9.8.7").await.unwrap().status(), 200);
    let limited = from("10.9.8.7").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));

    let events = server.state.durable.recent_audit(Some(&bound.id), 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "api_key.suspicious" && e.reason.as_deref() == Some("rate limit exceeded")));
    assert!(events.iter().any(|e| e.kind == "api_key.verify" && e.reason.as_deref() == Some("address not allowed")));
    assert!(events.iter().any(|e| e.kind == "api_key.verify" && e.result == "ok" && e.caller.as_deref() == Some("10.9.8.7")));
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&bound.key), "key material in the audit log");
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sesame_security_events_total{event=\"api_key_suspicious\"}"));
}

#[tokio::test]
async fn a_new_address_is_suspicious() {
    let server = TestServer::start(Backend::Embedded).await;
    let k = admin(&server).generate(&spec("svc", "a")).await.unwrap();
    for ip in ["10.0.0.1", "10.0.0.1"] {
        assert!(apikeys::verify(&server.state, &k.key, Some(ip.parse().unwrap())).await.unwrap().is_ok());
    }
    let count = |events: &[sesame::store::AuditEvent]| events.iter().filter(|e| e.kind == "api_key.suspicious").count();
    assert_eq!(count(&server.state.durable.recent_audit(Some(&k.id), 100).await.unwrap()), 0);
    assert!(apikeys::verify(&server.state, &k.key, Some("10.0.0.2".parse().unwrap())).await.unwrap().is_ok());
    let events = server.state.durable.recent_audit(Some(&k.id), 100).await.unwrap();
    assert_eq!(count(&events), 1, "{events:?}");
}

#[tokio::test]
async fn revocation_reaches_another_node_within_a_second() {
    if !backends().contains(&Backend::External) {
        eprintln!("skipped: needs PostgreSQL and Redis");
        return;
    }
    let a = TestServer::start_with(Backend::External, |c| c.api_keys.cache_ttl = Duration::from_secs(600)).await;
    let b = TestServer::start_node((*a.state.config).clone(), Arc::new(sesame::clock::SystemClock), None, Some(a.redis_prefix.clone())).await;
    let issued = admin(&a).generate(&spec("svc", "a")).await.unwrap();
    assert!(apikeys::verify(&b.state, &issued.key, None).await.unwrap().is_ok(), "cached on node B now");
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin(&a).revoke(&issued.id).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut rejected = false;
    while std::time::Instant::now() < deadline {
        if apikeys::verify(&b.state, &issued.key, None).await.unwrap().is_err() {
            rejected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rejected, "node B still accepts a key revoked on node A (its cache lives 600 s)");
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_scope() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let root = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
        let plain = add_machine(&server, "Plain", "reports:read", AuthMethod::ClientSecretBasic).await;
        let token_of = |m: &crate::machine_support::Machine| {
            http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&[("grant_type", "client_credentials")]).send()
        };
        let admin_token = token_of(&root).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
        let plain_token = token_of(&plain).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();

        assert_eq!(http().get(server.url("/admin/api-keys")).send().await.unwrap().status(), 401);
        assert_eq!(http().get(server.url("/admin/api-keys")).bearer_auth(&plain_token).send().await.unwrap().status(), 403);

        let res = http().post(server.url("/admin/api-keys")).bearer_auth(&admin_token).json(&serde_json::json!({"name": "reporting", "scope": "reports:read", "env": "staging", "expires_in": "30d", "cidrs": ["10.0.0.0/8"]})).send().await.unwrap();
        assert_eq!(res.status(), 201, "{backend:?}");
        let created: Value = res.json().await.unwrap();
        let key = created["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("ses_staging_"));
        let bad = http().post(server.url("/admin/api-keys")).bearer_auth(&admin_token).json(&serde_json::json!({"name": "x", "env": "moon"})).send().await.unwrap();
        assert_eq!(bad.status(), 400);

        let list: Value = http().get(server.url("/admin/api-keys")).bearer_auth(&admin_token).send().await.unwrap().json().await.unwrap();
        assert_eq!(list["keys"][0]["name"], "reporting");
        assert!(!list.to_string().contains(&key), "list never shows a key");

        let tested: Value = http().post(server.url("/admin/api-keys/test")).bearer_auth(&admin_token).json(&serde_json::json!({"key": key})).send().await.unwrap().json().await.unwrap();
        assert_eq!(tested["valid"], true);
        let id = created["id"].as_str().unwrap();
        let rotated: Value = http().post(server.url(&format!("/admin/api-keys/{id}/rotate"))).bearer_auth(&admin_token).json(&serde_json::json!({"grace": "1h"})).send().await.unwrap().json().await.unwrap();
        assert_eq!(rotated["replaces"], id);
        let res = http().post(server.url(&format!("/admin/api-keys/{}/revoke", rotated["id"].as_str().unwrap()))).bearer_auth(&admin_token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let res = http().post(server.url("/admin/api-keys/nope/revoke")).bearer_auth(&admin_token).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let events = server.state.durable.recent_audit(Some(id), 10).await.unwrap();
        assert!(events.iter().any(|e| e.kind == "api_key.rotate" && e.caller.as_deref() == Some(root.id.as_str())), "admin actions are audited with the actor");
    }
}
