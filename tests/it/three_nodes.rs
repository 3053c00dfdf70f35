//! Three `sesame serve` processes of one cluster (one PostgreSQL schema, one Redis) behind nginx
//! round robin, no sticky sessions, the issuer being nginx's address. Everything goes through
//! nginx, so consecutive requests of one flow land on different nodes: single sign-on, code
//! redemption, refresh rotation and reuse detection, revocation, API keys (their networks judged
//! by the X-Forwarded-For nginx passes on), and a signing key rotation by the CLI. Each node's own `/metrics` shows it served its share.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::support::api_keys::{API_KEY_TOKEN_TYPE, EXCHANGE};
use crate::support::cluster::{machine, web_app, Cluster, NEEDS};
use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{eventually, http, Site};

pub fn tests(t: &mut Tests) {
    t.test_needing(NEEDS, "sso_tokens_revocation_api_keys_and_key_rotation_through_nginx", sso_tokens_revocation_api_keys_and_key_rotation_through_nginx);
}

const NODES: usize = 3;
/// Consecutive requests that, through round robin, reach every node twice.
const EVERY_NODE: usize = 2 * NODES;

async fn token_for(site: &impl Site, client: &TestClient) -> Value {
    let res = post_as(site, client, "/token", &[("grant_type", "client_credentials")]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn refresh(site: &impl Site, app: &TestClient, token: &str) -> (u16, Value) {
    let res = post_as(site, app, "/token", &[("grant_type", "refresh_token"), ("refresh_token", token)]).await;
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Whether the API key is active, as a resource server asks (introspection).
async fn key_active(site: &impl Site, rs: &TestClient, key: &str) -> bool {
    let res = post_as(site, rs, "/introspect", &[("token", key)]).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["active"].as_bool().unwrap()
}

/// `token`'s claims, verified with the JWKS fetched through nginx.
async fn verify(site: &impl Site, token: &str) -> Value {
    let jwks: JwkSet = http().get(site.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = decode_header(token).unwrap();
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("{kid} is not in the JWKS served through nginx"));
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_issuer(&[site.base()]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).expect("verifies against the JWKS").claims
}

async fn served_per_node(cluster: &Cluster) -> Vec<u64> {
    let mut served = Vec::new();
    for i in 0..cluster.nodes.len() {
        served.push(cluster.requests_served(i).await);
    }
    served
}

fn kids(listed: &Value) -> Vec<String> {
    listed["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

async fn sso_tokens_revocation_api_keys_and_key_rotation_through_nginx() {
    let env = [("SESAME_TOKENS__REFRESH_REUSE_GRACE", "0s".to_string()), ("SESAME_API_KEYS__CACHE_TTL", "60s".to_string())];
    let cluster = Cluster::start(NODES, Path::new(env!("CARGO_BIN_EXE_sesame")), &env).await;
    let sub = cluster.add_user("alice").await;
    let (wiki, chat) = (cluster.add_client(&web_app("Wiki")).await, cluster.add_client(&web_app("Chat")).await);
    let ops = cluster.add_client(&machine("Ops", "sesame:admin")).await;
    let rs = cluster.add_client(&machine("Reports", "reports:read")).await;

    let discovery: Value = http().get(cluster.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], cluster.base(), "the issuer is nginx's address");
    assert_eq!(discovery["token_endpoint"], cluster.url("/token"));

    // Single sign-on: signed in once for Wiki, Chat gets a code without a prompt.
    let browser = Browser::new();
    let (p_wiki, p_chat) = (pkce(), pkce());
    let callback = sign_in(&browser, &cluster, &authorize_url(&cluster, &wiki, &p_wiki, &[("scope", "openid offline_access")]), "alice").await;
    assert!(callback.starts_with(&wiki.redirect_uri), "{callback}");
    let wiki_code = query_param(&callback, "code").expect("a code for Wiki");
    let mut chat_access = String::new();
    for n in 0..EVERY_NODE {
        // Each authorize may meet another node: the session is every node's.
        let res = browser.get(&authorize_url(&cluster, &chat, &p_chat, &[("scope", "openid offline_access")])).await;
        assert_eq!(res.status(), 303);
        let to = location(&res);
        assert!(to.starts_with(&chat.redirect_uri), "authorize {n} for Chat prompted instead of answering at once: {to}");
        if n + 1 < EVERY_NODE {
            continue;
        }
        // Redemption: the last code, at whichever node nginx picks.
        let res = redeem(&cluster, &chat, &query_param(&to, "code").unwrap(), &p_chat.verifier).await;
        assert_eq!(res.status(), 200);
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(id_claims(&tokens)["sub"], sub.as_str());
        chat_access = tokens["access_token"].as_str().unwrap().to_string();
    }
    let res = redeem(&cluster, &wiki, &wiki_code, &p_wiki.verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let claims = verify(&cluster, &access).await;
    assert_eq!((claims["sub"].as_str(), claims["iss"].as_str()), (Some(sub.as_str()), Some(cluster.base())));

    // Refresh rotation, then reuse of a spent token revokes the family, on whichever node.
    let first = tokens["refresh_token"].as_str().expect("a refresh token").to_string();
    let mut current = first.clone();
    for _ in 0..EVERY_NODE {
        let (status, body) = refresh(&cluster, &wiki, &current).await;
        assert_eq!(status, 200, "{body}");
        current = body["refresh_token"].as_str().unwrap().to_string();
    }
    // The reuse grace (0 s here) counts whole seconds: a reuse in the second of the use would
    // pass as a retry.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = refresh(&cluster, &wiki, &first).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "reuse of a spent token: {body}");
    for _ in 0..EVERY_NODE {
        let (status, body) = refresh(&cluster, &wiki, &current).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the family is revoked on every node: {body}");
    }

    // ... and with it the access tokens it issued.
    let res = http().get(cluster.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 401, "an access token of a revoked family at userinfo");

    // Revocation of an access token (Chat's): userinfo refuses it on every node.
    for _ in 0..EVERY_NODE {
        let res = http().get(cluster.url("/userinfo")).bearer_auth(&chat_access).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = post_as(&cluster, &chat, "/revoke", &[("token", &chat_access), ("token_type_hint", "access_token")]).await;
    assert_eq!(res.status(), 200);
    for _ in 0..EVERY_NODE {
        let res = http().get(cluster.url("/userinfo")).bearer_auth(&chat_access).send().await.unwrap();
        assert_eq!(res.status(), 401, "a revoked access token at userinfo");
    }

    // Every node answered its share of all that, counted by the node itself (nothing so far was
    // sent to a node but through nginx).
    let first_part = served_per_node(&cluster).await;
    assert!(first_part.iter().all(|n| *n > 0), "a node served nothing through nginx: {first_part:?}");

    // An API key issued through the admin API, checked (and cached, for 60 s) on every node,
    // then revoked: every node refuses it once the revocation reached it through Redis.
    let admin = token_for(&cluster, &ops).await["access_token"].as_str().unwrap().to_string();
    let res = http().post(cluster.url("/admin/api-keys")).bearer_auth(&admin).json(&json!({"name": "billing", "scope": "reports:read"})).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let issued: Value = res.json().await.unwrap();
    let (key_id, key) = (issued["id"].as_str().unwrap(), issued["key"].as_str().unwrap());
    for _ in 0..EVERY_NODE {
        assert!(key_active(&cluster, &rs, key).await, "a fresh API key");
    }
    cluster.wait_for_subscribers().await;
    let res = http().post(cluster.url(&format!("/admin/api-keys/{key_id}/revoke"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    eventually(Duration::from_secs(10), "the revoked API key refused on every node", || async {
        for node in &cluster.nodes {
            let res = post_as(node.process(), &rs, "/introspect", &[("token", key)]).await;
            if res.json::<Value>().await.unwrap()["active"] != false {
                return None;
            }
        }
        Some(())
    })
    .await;
    for _ in 0..EVERY_NODE {
        assert!(!key_active(&cluster, &rs, key).await, "a revoked API key");
    }

    // nginx forwards X-Forwarded-For (adding its own peer), which the nodes believe from it: a
    // key bound to 203.0.113.0/24 is exchanged for a caller that says it comes from there, and
    // refused to one that does not (nginx's own peer, 127.0.0.1).
    let spec = json!({"name": "bound", "scope": "reports:read", "cidrs": ["203.0.113.0/24"]});
    let res = http().post(cluster.url("/admin/api-keys")).bearer_auth(&admin).json(&spec).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let bound = res.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_string();
    let exchange = [("grant_type", EXCHANGE), ("subject_token", bound.as_str()), ("subject_token_type", API_KEY_TOKEN_TYPE)];
    let res = http().post(cluster.url("/token")).form(&exchange).send().await.unwrap();
    assert_eq!(res.status(), 400, "127.0.0.1 is outside the key's network");
    for _ in 0..EVERY_NODE {
        let res = http().post(cluster.url("/token")).header("x-forwarded-for", "203.0.113.7").form(&exchange).send().await.unwrap();
        assert_eq!(res.status(), 200, "the caller's address came through nginx");
    }

    // A signing key rotation by the CLI, on the cluster's database: once the nodes have loaded
    // the new keys, tokens from every node carry one and verify against the JWKS from nginx.
    let cli = Cli::on(&cluster.db.url, Some(&cluster.kek));
    let before = kids(&cli.json(&["key", "list"], None));
    let after = kids(&cli.json(&["key", "rotate", "--now"], None));
    let new: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    assert!(!new.is_empty(), "rotate --now made no key: {before:?} then {after:?}");
    for node in &cluster.nodes {
        eventually(Duration::from_secs(20), "every node signs with a new key", || async {
            let token = token_for(node.process(), &rs).await["access_token"].as_str().unwrap().to_string();
            new.contains(&&decode_header(&token).unwrap().kid.unwrap()).then_some(())
        })
        .await;
    }
    for _ in 0..EVERY_NODE {
        let token = token_for(&cluster, &rs).await["access_token"].as_str().unwrap().to_string();
        let kid = decode_header(&token).unwrap().kid.unwrap();
        assert!(new.contains(&&kid), "a token signed by {kid}, not by a new key {new:?}");
        assert_eq!(verify(&cluster, &token).await["client_id"], rs.id.as_str());
    }

    println!("requests served per node: {first_part:?} through nginx alone, {:?} in all (with the checks sent to each node)", served_per_node(&cluster).await);
}
