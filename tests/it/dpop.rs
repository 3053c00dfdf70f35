//! DPoP (RFC 9449) from the outside, with proofs signed here: binding at the token endpoint,
//! enforcement at sesame's own resources (the admin API, userinfo), every proof rule refused at
//! the wire, replay across two nodes, server nonces, and public clients' bound refresh tokens.

use std::sync::Arc;

use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};
use sesame::clock::SystemClock;
use sesame::crypto::alg::SigningAlg;
use sesame::store::AuthMethod;

use crate::support::dpop::{ath, now, DpopKey};
use crate::support::harness::{Need, Tests};
use crate::support::machine::{add_machine, error_code, Machine};
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("dpop_client_credentials_binds_the_token_and_introspection_says_so", dpop_client_credentials_binds_the_token_and_introspection_says_so)
        .each_backend("dpop_a_stolen_bound_token_is_refused_as_bearer_or_with_another_key", dpop_a_stolen_bound_token_is_refused_as_bearer_or_with_another_key)
        .each_backend("dpop_resource_proofs_must_name_the_request_and_the_token", dpop_resource_proofs_must_name_the_request_and_the_token)
        .each_backend("dpop_token_endpoint_refuses_each_bad_proof", dpop_token_endpoint_refuses_each_bad_proof)
        .each_backend("dpop_a_client_that_requires_dpop_gets_nothing_without_a_proof", dpop_a_client_that_requires_dpop_gets_nothing_without_a_proof)
        .each_backend("dpop_server_nonces_are_asked_for_and_accepted", dpop_server_nonces_are_asked_for_and_accepted)
        .each_backend("dpop_public_clients_refresh_tokens_are_bound_to_the_key", dpop_public_clients_refresh_tokens_are_bound_to_the_key)
        .test_needing(&[Need::Postgres, Need::Redis], "dpop_jti_replayed_on_the_other_node_is_refused", dpop_jti_replayed_on_the_other_node_is_refused)
        .each_backend("dpop_discovery_advertises_exactly_the_verified_algorithms", dpop_discovery_advertises_exactly_the_verified_algorithms);
}

async fn admin_machine(server: &TestServer) -> Machine {
    add_machine(server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await
}

async fn token_request(server: &TestServer, m: &Machine, proof: Option<&str>) -> reqwest::Response {
    let mut req = http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&[("grant_type", "client_credentials")]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

/// A DPoP-bound admin token for `key`.
async fn bound_token(server: &TestServer, m: &Machine, key: &DpopKey) -> String {
    let res = token_request(server, m, Some(&key.proof("POST", &server.url("/token"), None))).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn admin_get(server: &TestServer, scheme: &str, token: &str, proof: Option<&str>) -> reqwest::Response {
    let mut req = http().get(server.url("/admin/api-keys")).header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

async fn dpop_client_credentials_binds_the_token_and_introspection_says_so(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = admin_machine(&server).await;
    for alg in SigningAlg::ALL {
        let key = DpopKey::new(alg);
        let token = bound_token(&server, &m, &key).await;
        assert_eq!(jwt_claims(&token)["cnf"], json!({"jkt": key.jkt()}), "{alg}: the token names the key");
        let res = http().post(server.url("/introspect")).basic_auth(&m.id, m.secret.as_ref()).form(&[("token", token.as_str())]).send().await.unwrap();
        let info: Value = res.json().await.unwrap();
        assert_eq!((info["active"].clone(), info["token_type"].clone(), info["cnf"]["jkt"].clone()), (json!(true), json!("DPoP"), json!(key.jkt())), "{info}");
    }
    // Without a proof, the same client gets a plain bearer token.
    let body: Value = token_request(&server, &m, None).await.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(jwt_claims(body["access_token"].as_str().unwrap()).get("cnf").is_none());
}

async fn dpop_a_stolen_bound_token_is_refused_as_bearer_or_with_another_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = admin_machine(&server).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let token = bound_token(&server, &m, &key).await;
    let url = server.url("/admin/api-keys");

    let res = admin_get(&server, "DPoP", &token, Some(&key.proof("GET", &url, Some(&token)))).await;
    assert_eq!(res.status(), 200, "the holder of the key is served");

    let res = admin_get(&server, "Bearer", &token, None).await;
    assert_eq!(res.status(), 401, "a bound token as a bearer token");
    assert!(challenge(&res).starts_with("DPoP ") && challenge(&res).contains("error=\"invalid_token\""), "{}", challenge(&res));

    let thief = DpopKey::new(SigningAlg::ES256);
    let res = admin_get(&server, "DPoP", &token, Some(&thief.proof("GET", &url, Some(&token)))).await;
    assert_eq!(res.status(), 401, "a bound token with another key's proof");
    assert_eq!(error_code(res).await.1, "invalid_token");

    // Userinfo too: a person's bound token, sent as a bearer token or with another key.
    let user_key = DpopKey::new(SigningAlg::EdDSA);
    let (_, tokens) = code_flow_tokens(&server, false, Some(&user_key)).await;
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = server.url("/userinfo");
    let res = http().get(&userinfo).header("Authorization", format!("DPoP {access}")).header("DPoP", user_key.proof("GET", &userinfo, Some(access))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["preferred_username"], "alice");
    let res = http().get(&userinfo).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).starts_with("DPoP "));
    let res = http().post(&userinfo).form(&[("access_token", access)]).send().await.unwrap();
    assert_eq!(res.status(), 401, "a bound token in a form body is a bearer token too");
    let res = http().get(&userinfo).header("Authorization", format!("DPoP {access}")).header("DPoP", thief.proof("GET", &userinfo, Some(access))).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // An unbound token is not made DPoP by sending it with the DPoP scheme.
    let plain: Value = token_request(&server, &m, None).await.json().await.unwrap();
    let plain = plain["access_token"].as_str().unwrap();
    let res = admin_get(&server, "DPoP", plain, Some(&key.proof("GET", &url, Some(plain)))).await;
    assert_eq!(res.status(), 401);
    assert_eq!(admin_get(&server, "Bearer", plain, None).await.status(), 200);
}

async fn dpop_resource_proofs_must_name_the_request_and_the_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = admin_machine(&server).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let token = bound_token(&server, &m, &key).await;
    let url = server.url("/admin/api-keys");
    let claims = |patch: Value| {
        let mut c = json!({"jti": sesame::crypto::secrets::random_token(12), "htm": "GET", "htu": url, "iat": now(), "ath": ath(&token)});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    for (why, proof) in [
        ("no ath", key.sign(json!({}), claims(json!({"ath": null})))),
        ("ath of another token", key.sign(json!({}), claims(json!({"ath": ath("another")})))),
        ("wrong htm", key.sign(json!({}), claims(json!({"htm": "POST"})))),
        ("wrong htu", key.sign(json!({}), claims(json!({"htu": server.url("/userinfo")})))),
        ("old iat", key.sign(json!({}), claims(json!({"iat": now() - 600})))),
        ("iat in the future", key.sign(json!({}), claims(json!({"iat": now() + 600})))),
        ("typ JWT", key.sign(json!({"typ": "JWT"}), claims(json!({})))),
    ] {
        let res = admin_get(&server, "DPoP", &token, Some(&proof)).await;
        assert_eq!(res.status(), 401, "{why}");
        let c = challenge(&res);
        assert!(c.starts_with("DPoP ") && c.contains("error=\"invalid_dpop_proof\""), "{why}: {c}");
    }
    let res = admin_get(&server, "DPoP", &token, None).await;
    assert_eq!(error_code(res).await, (401, "invalid_dpop_proof".into()), "no proof at all");

    let proof = key.proof("GET", &url, Some(&token));
    assert_eq!(admin_get(&server, "DPoP", &token, Some(&proof)).await.status(), 200);
    let res = admin_get(&server, "DPoP", &token, Some(&proof)).await;
    assert_eq!(error_code(res).await, (401, "invalid_dpop_proof".into()), "a replayed proof (same jti)");
}

async fn dpop_token_endpoint_refuses_each_bad_proof(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = admin_machine(&server).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let htu = server.url("/token");
    let claims = |htm: &str, htu: &str, iat: i64| json!({"jti": sesame::crypto::secrets::random_token(12), "htm": htm, "htu": htu, "iat": iat});
    let mut private = key.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    for (why, proof) in [
        ("wrong htm", key.sign(json!({}), claims("GET", &htu, now()))),
        ("wrong htu", key.sign(json!({}), claims("POST", &server.url("/introspect"), now()))),
        ("htu of another server", key.sign(json!({}), claims("POST", "https://sesame.example.com/token", now()))),
        ("old iat", key.sign(json!({}), claims("POST", &htu, now() - 120))),
        ("a private key in the header", key.sign(json!({"jwk": private}), claims("POST", &htu, now()))),
        ("alg none", format!("{}.e30.", base64_url(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk})))),
        ("not a JWT", "garbage".to_string()),
    ] {
        let res = token_request(&server, &m, Some(&proof)).await;
        assert_eq!(error_code(res).await, (400, "invalid_dpop_proof".into()), "{why}");
    }
    let proof = key.proof("POST", &htu, None);
    assert_eq!(token_request(&server, &m, Some(&proof)).await.status(), 200);
    let res = token_request(&server, &m, Some(&proof)).await;
    assert_eq!(error_code(res).await, (400, "invalid_dpop_proof".into()), "the same jti twice");
    let two = http().post(&htu).basic_auth(&m.id, m.secret.as_ref()).form(&[("grant_type", "client_credentials")])
        .header("DPoP", key.proof("POST", &htu, None)).header("DPoP", key.proof("POST", &htu, None)).send().await.unwrap();
    assert_eq!(error_code(two).await, (400, "invalid_dpop_proof".into()), "two DPoP headers");
}

fn base64_url(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn dpop_a_client_that_requires_dpop_gets_nothing_without_a_proof(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut spec = NewClient::new("Strict");
    spec.grant_types = vec!["client_credentials".into()];
    spec.scope = Some("reports:read".into());
    spec.require_dpop = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let m = Machine { id: created.client.id, secret: created.client_secret };
    let res = token_request(&server, &m, None).await;
    assert_eq!(error_code(res).await, (400, "invalid_dpop_proof".into()));
    let key = DpopKey::new(SigningAlg::EdDSA);
    let body: Value = token_request(&server, &m, Some(&key.proof("POST", &server.url("/token"), None))).await.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
}

async fn dpop_server_nonces_are_asked_for_and_accepted(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.dpop.nonce = true).await;
    let m = admin_machine(&server).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let htu = server.url("/token");
    let res = token_request(&server, &m, Some(&key.proof("POST", &htu, None))).await;
    let nonce = res.headers().get("dpop-nonce").expect("a DPoP-Nonce header").to_str().unwrap().to_string();
    assert_eq!(error_code(res).await, (400, "use_dpop_nonce".into()));
    let made_up = key.sign(json!({}), json!({"jti": "j-made-up", "htm": "POST", "htu": htu, "iat": now(), "nonce": "not-ours"}));
    assert_eq!(error_code(token_request(&server, &m, Some(&made_up)).await).await.1, "use_dpop_nonce");
    let with_nonce = key.sign(json!({}), json!({"jti": "j-with-nonce", "htm": "POST", "htu": htu, "iat": now(), "nonce": nonce}));
    let res = token_request(&server, &m, Some(&with_nonce)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["dpop-nonce"].to_str().unwrap(), nonce, "the answer names the nonce to use next");
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

/// Signs `alice` in through a first-party client (public when asked) and redeems the code,
/// with a DPoP proof of `key` when given: the client and the token response.
async fn code_flow_tokens(server: &TestServer, public: bool, key: Option<&DpopKey>) -> (TestClient, Value) {
    if server.state.durable.user_by_username("alice").await.unwrap().is_none() {
        add_user(server, "alice").await;
    }
    let mut spec = NewClient::new("Phone");
    let redirect_uri = "http://127.0.0.1:9/phone/callback".to_string();
    spec.redirect_uris = vec![redirect_uri.clone()];
    spec.first_party = true;
    if public {
        spec.auth_method = AuthMethod::None;
    }
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let client = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri };
    let p = pkce();
    let callback = sign_in(&Browser::new(), server, &authorize_url(server, &client, &p, &[("scope", "openid profile offline_access")]), "alice").await;
    let code = query_param(&callback, "code").expect("a code");
    let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str()), ("code_verifier", p.verifier.as_str())];
    let mut req = http().post(server.url("/token"));
    match &client.secret {
        Some(s) => req = req.basic_auth(&client.id, Some(s)),
        None => form.push(("client_id", client.id.as_str())),
    }
    if let Some(k) = key {
        req = req.header("DPoP", k.proof("POST", &server.url("/token"), None));
    }
    let res = req.form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    (client, res.json().await.unwrap())
}

async fn refresh(server: &TestServer, client: &TestClient, token: &str, proof: Option<String>) -> reqwest::Response {
    let mut req = http().post(server.url("/token")).form(&[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client.id.as_str())]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn dpop_public_clients_refresh_tokens_are_bound_to_the_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let (client, tokens) = code_flow_tokens(&server, true, Some(&key)).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token").to_string();
    let htu = server.url("/token");

    let res = refresh(&server, &client, &refresh_token, None).await;
    assert_eq!(error_code(res).await, (400, "invalid_grant".into()), "a bound refresh token without a proof");
    let thief = DpopKey::new(SigningAlg::ES256);
    let res = refresh(&server, &client, &refresh_token, Some(thief.proof("POST", &htu, None))).await;
    assert_eq!(error_code(res).await, (400, "invalid_grant".into()), "with another key's proof");

    // The refusals did not spend it: its holder refreshes, and the successor is bound too.
    let res = refresh(&server, &client, &refresh_token, Some(key.proof("POST", &htu, None))).await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(jwt_claims(next["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());
    let successor = next["refresh_token"].as_str().unwrap();
    assert_eq!(error_code(refresh(&server, &client, successor, Some(thief.proof("POST", &htu, None))).await).await.1, "invalid_grant");

    // A confidential client's refresh tokens are bound by its credentials, not a key.
    let (confidential, tokens) = code_flow_tokens(&server, false, Some(&key)).await;
    let res = http().post(&htu).basic_auth(&confidential.id, confidential.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "Bearer");
}

async fn dpop_jti_replayed_on_the_other_node_is_refused() {
    let a = TestServer::start(Backend::External).await;
    let b = TestServer::start_node((*a.state.config).clone(), Arc::new(SystemClock), None, Some(a.redis_prefix.clone())).await;
    let m = admin_machine(&a).await;
    let key = DpopKey::new(SigningAlg::ES256);
    // Test nodes each have their own issuer URL, so each proof names its node's URL; what is
    // replayed is the jti, which every node remembers through Redis.
    let proof_for = |node: &TestServer, jti: &str| key.sign(json!({}), json!({"jti": jti, "htm": "POST", "htu": node.url("/token"), "iat": now()}));
    assert_eq!(token_request(&a, &m, Some(&proof_for(&a, "jti-1"))).await.status(), 200);
    let res = token_request(&b, &m, Some(&proof_for(&b, "jti-1"))).await;
    assert_eq!(error_code(res).await, (400, "invalid_dpop_proof".into()), "node B accepted a jti node A had seen");
    assert_eq!(token_request(&b, &m, Some(&proof_for(&b, "jti-2"))).await.status(), 200, "a fresh jti on node B");

    // A resource proof seen by node A's admin API is spent on node B's token endpoint too.
    let token = bound_token(&a, &m, &key).await;
    let resource_proof = key.sign(json!({}), json!({"jti": "jti-3", "htm": "GET", "htu": a.url("/admin/api-keys"), "iat": now(), "ath": ath(&token)}));
    assert_eq!(admin_get(&a, "DPoP", &token, Some(&resource_proof)).await.status(), 200);
    let res = token_request(&b, &m, Some(&proof_for(&b, "jti-3"))).await;
    assert_eq!(error_code(res).await, (400, "invalid_dpop_proof".into()));
}

async fn dpop_discovery_advertises_exactly_the_verified_algorithms(backend: Backend) {
    let server = TestServer::start(backend).await;
    let doc: Value = http().get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let advertised: Vec<String> = serde_json::from_value(doc["dpop_signing_alg_values_supported"].clone()).unwrap();
    assert_eq!(advertised, ["ES256", "RS256", "PS256", "EdDSA", "Ed25519"]);
    let m = admin_machine(&server).await;
    // Each advertised algorithm is accepted, and a common one that is not (ES384) is refused.
    for alg in ["ES256", "RS256", "EdDSA"] {
        let key = DpopKey::new(alg.parse().unwrap());
        assert_eq!(token_request(&server, &m, Some(&key.proof("POST", &server.url("/token"), None))).await.status(), 200, "{alg}");
    }
    let key = DpopKey::new(SigningAlg::RS256);
    let ps256 = key.sign(json!({"alg": "PS256"}), json!({"jti": "x", "htm": "POST", "htu": server.url("/token"), "iat": now()}));
    assert_eq!(error_code(token_request(&server, &m, Some(&ps256)).await).await.1, "invalid_dpop_proof", "an RS256 signature labelled PS256");
    let es384 = key.sign(json!({"alg": "ES384"}), json!({"jti": "y", "htm": "POST", "htu": server.url("/token"), "iat": now()}));
    assert_eq!(error_code(token_request(&server, &m, Some(&es384)).await).await.1, "invalid_dpop_proof");
}
