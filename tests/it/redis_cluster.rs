//! sesame on a Redis Cluster of three masters that the tests start themselves
//! (support/redis_cluster.rs): two nodes on one cluster sign in, refresh, revoke, share DPoP
//! nonces and API key revocations, with their keys spread over the masters; and a subscription
//! that outlives the node it listened on. The ephemeral store's contract runs on a cluster too
//! (`stores::*::redis_cluster`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sesame::api_keys::{self, Rejection};
use sesame::clock::SystemClock;
use sesame::config::Config;
use sesame::crypto::alg::SigningAlg;
use sesame::store::ephemeral::RedisStore;
use sesame::store::{AuthMethod, Ephemeral, StoreError};

use crate::support::api_keys::{admin, spec};
use crate::support::dpop::{now, DpopKey};
use crate::support::harness::{Need, Tests};
use crate::support::machine::{add_machine, error_code};
use crate::support::redis_cluster::{self, node_connection, RedisCluster};
use crate::support::tokens::{refresh, signed_in_with_refresh};
use crate::support::{eventually, http, unique, Backend, TestServer};

const ON_A_CLUSTER: &[Need] = &[Need::Postgres, Need::RedisCluster];

pub fn tests(t: &mut Tests) {
    t.test_needing(ON_A_CLUSTER, "two_nodes_share_sign_in_refresh_revocation_and_dpop_nonces", two_nodes_share_sign_in_refresh_revocation_and_dpop_nonces)
        .test_needing(ON_A_CLUSTER, "an_api_key_revoked_on_one_node_is_refused_on_another_within_a_second", an_api_key_revoked_on_one_node_is_refused_on_another_within_a_second)
        .test_needing(&[Need::RedisCluster], "a_subscription_moves_to_the_next_seed_when_its_node_dies", a_subscription_moves_to_the_next_seed_when_its_node_dies)
        .test("a_key_prefix_with_braces_is_refused", a_key_prefix_with_braces_is_refused);
}

/// Node A on `cluster` (PostgreSQL for the durable side), and node B: same configuration, same
/// key prefix, its own address.
async fn two_nodes(cluster: &RedisCluster, tweak: impl FnOnce(&mut Config)) -> (TestServer, TestServer) {
    let url = cluster.url();
    let a = TestServer::start_with(Backend::External, |c| {
        c.redis_url = Some(url);
        tweak(c);
    })
    .await;
    assert_eq!(a.state.ephemeral.backend(), "redis cluster");
    let b = TestServer::start_node((*a.state.config).clone(), Arc::new(SystemClock), None, Some(a.redis_prefix.clone())).await;
    (a, b)
}

async fn userinfo_status(server: &TestServer, token: &str) -> u16 {
    http().get(server.url("/userinfo")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

async fn two_nodes_share_sign_in_refresh_revocation_and_dpop_nonces() {
    let cluster = redis_cluster::shared().await;
    let (a, b) = two_nodes(&cluster, |c| c.dpop.nonce = true).await;
    for node in [&a, &b] {
        assert_eq!(http().get(node.url("/readyz")).send().await.unwrap().status(), 200, "every master answers PING");
    }

    // The code flow with PKCE at node A; the refresh at node B. (Each test node is its own
    // issuer, on its own address: a token is checked at the node that issued it.)
    let s = signed_in_with_refresh(&a).await;
    assert_eq!(userinfo_status(&a, &s.access).await, 200);
    let res = refresh(&b, &s.app, &s.refresh, None).await;
    assert_eq!(res.status(), 200, "node B refused a refresh token issued by node A");
    let rotated: Value = res.json().await.unwrap();
    let access = rotated["access_token"].as_str().expect("an access token").to_string();
    assert_ne!(rotated["refresh_token"].as_str(), Some(s.refresh.as_str()), "rotated");

    // Revoked, then refused: the deny list's one-slot read. The other token stays good.
    assert_eq!(userinfo_status(&b, &access).await, 200);
    let res = http().post(b.url("/revoke")).basic_auth(&s.app.id, s.app.secret.as_ref()).form(&[("token", access.as_str()), ("token_type_hint", "access_token")]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(userinfo_status(&b, &access).await, 401, "a revoked access token is accepted");
    assert_eq!(userinfo_status(&a, &s.access).await, 200, "revoking one access token denied another");

    // A DPoP nonce handed out by node A is accepted by node B.
    let m = add_machine(&a, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let token_request = |node: &TestServer, proof: String| {
        http().post(node.url("/token")).basic_auth(&m.id, m.secret.as_ref()).header("DPoP", proof).form(&[("grant_type", "client_credentials")]).send()
    };
    let res = token_request(&a, key.proof("POST", &a.url("/token"), None)).await.unwrap();
    let nonce = res.headers().get("dpop-nonce").expect("a DPoP-Nonce header").to_str().unwrap().to_string();
    assert_eq!(error_code(res).await, (400, "use_dpop_nonce".into()));
    let htu = b.url("/token");
    let with_nonce = key.sign(json!({}), json!({"jti": unique("j"), "htm": "POST", "htu": htu, "iat": now(), "nonce": nonce}));
    let res = token_request(&b, with_nonce).await.unwrap();
    assert_eq!(res.status(), 200, "node B refused node A's nonce");
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");

    // The keys really are spread: each family that is read together sits on one master, and
    // the whole keyspace on more than one.
    let prefix = &a.redis_prefix;
    let all = cluster.keys_per_node(&format!("{prefix}*")).await;
    assert!(all.iter().filter(|&&n| n > 0).count() >= 2, "every key on one master: {all:?}");
    for family in ["{atdeny}", "{dpop-nonce}"] {
        let counts = cluster.keys_per_node(&format!("{prefix}{family}*")).await;
        assert_eq!(counts.iter().filter(|&&n| n > 0).count(), 1, "{family} keys on one master each: {counts:?}");
    }
    let deny = cluster.keys_per_node(&format!("{prefix}{{atdeny}}*")).await;
    assert!(deny.iter().sum::<usize>() >= 2, "the loaded marker and the denial: {deny:?}");
}

async fn an_api_key_revoked_on_one_node_is_refused_on_another_within_a_second() {
    let cluster = redis_cluster::shared().await;
    let (a, b) = two_nodes(&cluster, |c| c.api_keys.cache_ttl = Duration::from_secs(600)).await;
    let issued = admin(&a).generate(&spec("svc", "a")).await.unwrap();
    assert!(api_keys::verify(&b.state, &issued.key, None).await.unwrap().is_ok());
    // Both nodes listen (each on a seed of its choosing) before the revocation is announced.
    let channel = format!("{}{}", a.redis_prefix, api_keys::cache::INVALIDATION_CHANNEL);
    eventually(Duration::from_secs(10), &format!("2 nodes subscribed to {channel}"), || async {
        (cluster.subscribers_per_node(&channel).await.iter().sum::<i64>() >= 2).then_some(())
    })
    .await;
    admin(&a).revoke(&issued.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    let rejection = loop {
        match api_keys::verify(&b.state, &issued.key, None).await.unwrap() {
            Err(r) => break r,
            Ok(_) if Instant::now() >= deadline => panic!("node B still accepts a key revoked on node A after 1 s (its cache lives 600 s)"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(rejection, Rejection::Revoked);
}

/// Publishes `message` on `channel` through `publish` until `rx` hears it; at most 10 s.
async fn until_heard<F, Fut>(what: &str, rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>, message: &[u8], mut publish: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        publish().await;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            if m == message {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{what}: not heard within 10 s");
    }
}

/// The subscriber listens on the first seed; when that node dies it moves to the next seed,
/// says so with an empty message, and hears what is published at another node.
async fn a_subscription_moves_to_the_next_seed_when_its_node_dies() {
    let mut cluster = RedisCluster::spawn().await;
    let prefix = format!("{}:", unique("test"));
    let store = RedisStore::connect(&cluster.url(), &prefix).await.expect("connect to the cluster");
    let mut rx = store.subscribe("news");
    until_heard("published through the cluster connection", &mut rx, b"hello", || async { store.publish("news", b"hello").await.unwrap() }).await;
    let channel = format!("{prefix}news");
    assert_eq!(cluster.subscribers_per_node(&channel).await, [1, 0, 0], "the subscriber is on the first seed");

    tokio::task::block_in_place(|| cluster.stop_node(0));
    let reconnected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Some(m) if m == b"hello" => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("a message within 10 s of the node's death");
    assert_eq!(reconnected, Some(Vec::new()), "a reconnect is announced by an empty message");
    let second = cluster.node_urls()[1].clone();
    let conn = node_connection(&second).await;
    until_heard("published at the second node", &mut rx, b"after", || {
        let (mut conn, channel) = (conn.clone(), channel.clone());
        async move { redis::cmd("PUBLISH").arg(channel).arg("after").query_async::<()>(&mut conn).await.unwrap() }
    })
    .await;
    assert_eq!(cluster.subscribers_per_node(&channel).await.iter().sum::<i64>(), 1);
}

async fn a_key_prefix_with_braces_is_refused() {
    match RedisStore::connect("redis+cluster://127.0.0.1:1,127.0.0.1:2", "tenant{a}:").await {
        Err(StoreError::Other(why)) => assert!(why.contains("must not contain { or }"), "{why}"),
        Err(e) => panic!("refused for another reason: {e:?}"),
        Ok(_) => panic!("a prefix with braces would take the hash tags' place"),
    }
    match RedisStore::connect("redis+cluster://127.0.0.1:1,,127.0.0.1:2", "t:").await {
        Err(StoreError::Other(why)) => assert!(why.contains("seed 2 is empty"), "{why}"),
        other => panic!("a bad cluster URL: {:?}", other.err()),
    }
}
