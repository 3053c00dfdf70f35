//! Two nodes of one cluster (one PostgreSQL database, one Redis keyspace): what one node does,
//! the other sees.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sesame::api_keys::{self, Rejection};
use sesame::clock::SystemClock;
use sesame::crypto::secrets::hash_secret;

use crate::support::api_keys::{admin, spec};
use crate::support::harness::{Need, Tests};
use crate::support::sso::*;
use crate::support::{http, wait_for_subscribers, Backend, TestServer};

const CLUSTER: &[Need] = &[Need::Postgres, Need::Redis];

pub fn tests(t: &mut Tests) {
    t.test_needing(CLUSTER, "revocation_reaches_another_node_within_a_second", revocation_reaches_another_node_within_a_second)
        .test_needing(CLUSTER, "a_login_on_one_node_is_a_session_on_another", a_login_on_one_node_is_a_session_on_another)
        .test_needing(CLUSTER, "a_device_approved_on_one_node_polls_on_another", a_device_approved_on_one_node_polls_on_another);
}

/// A second node of `a`'s cluster: same configuration (database, key-encryption key), same
/// Redis keyspace, its own address.
async fn second_node(a: &TestServer) -> TestServer {
    TestServer::start_node((*a.state.config).clone(), Arc::new(SystemClock), None, Some(a.redis_prefix.clone())).await
}

async fn revocation_reaches_another_node_within_a_second() {
    let a = TestServer::start_with(Backend::External, |c| c.api_keys.cache_ttl = Duration::from_secs(600)).await;
    let b = second_node(&a).await;
    let issued = admin(&a).generate(&spec("svc", "a")).await.unwrap();
    assert!(api_keys::verify(&b.state, &issued.key, None).await.unwrap().is_ok());
    assert!(matches!(b.state.api_key_cache.get(&hash_secret(&issued.key)), Some(Some(_))), "node B caches the key (for 600 s)");
    // Both nodes listen before the revocation is announced (a message sent earlier is lost).
    wait_for_subscribers(&a.redis_prefix, 2).await;
    admin(&a).revoke(&issued.id).await.unwrap();
    let revoked_at = Instant::now();
    let deadline = revoked_at + Duration::from_secs(1);
    let rejection = loop {
        match api_keys::verify(&b.state, &issued.key, None).await.unwrap() {
            Err(r) => break r,
            Ok(_) if Instant::now() >= deadline => panic!("node B still accepts a key revoked on node A after 1 s (its cache lives 600 s)"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(rejection, Rejection::Revoked, "node B refused the key, but not as revoked");
}

async fn a_login_on_one_node_is_a_session_on_another() {
    let a = TestServer::start(Backend::External).await;
    let b = second_node(&a).await;
    let sub = add_user(&a, "alice").await;
    let app = add_client(&a, "App", true, false).await;
    let browser = Browser::new();
    let p = pkce();
    sign_in(&browser, &a, &authorize_url(&a, &app, &p, &[]), "alice").await;
    let res = browser.get(&authorize_url(&b, &app, &p, &[])).await;
    let to = location(&res);
    let code = query_param(&to, "code").unwrap_or_else(|| panic!("node B did not see node A's session: {to}"));

    // A code issued by node B redeems at node A.
    let res = redeem(&a, &app, &code, &p.verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().expect("an access token").to_string();
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let info: Value = http().get(a.url("/userinfo")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str(), "the code carried node A's login");

    // Replayed at node B, it fails there and revokes what node A issued for it.
    let res = redeem(&b, &app, &code, &p.verifier).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let res = http().get(a.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 401, "a replay on node B did not revoke node A's access token");
}

/// The device grant across nodes (one clock, which the test moves): the device starts and
/// polls at node A, the user types the code and approves at node B, and the tokens come from
/// node A, once.
async fn a_device_approved_on_one_node_polls_on_another() {
    use sesame::clock::{Clock, ManualClock};

    use crate::support::device::*;
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let a = TestServer::start_with_clock(Backend::External, clock.clone(), |_| {}).await;
    let b = TestServer::start_node((*a.state.config).clone(), clock.clone(), None, Some(a.redis_prefix.clone())).await;
    let sub = add_user(&a, "alice").await;
    let tool = add_device_client(&a, "Deploy CLI", ClientOptions::default()).await;
    let started = start(&a, &tool, "openid email").await;
    let device_code = started["device_code"].as_str().unwrap();
    poll_expecting(&a, &tool, device_code, "authorization_pending").await;
    let (_, done) = answer(&Browser::new(), &b, started["user_code"].as_str().unwrap(), "alice", "allow").await;
    assert!(done.contains("Device connected"), "{done}");
    // Node B knows node A's last poll: polling there at once is too fast (the interval is now 10 s).
    poll_expecting(&b, &tool, device_code, "slow_down").await;
    clock.advance(10);
    let (status, tokens) = poll(&a, &tool, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(id_claims(&tokens)["sub"], sub.as_str());
    clock.advance(10);
    let (status, again) = poll(&b, &tool, device_code).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "redeemed at node A, spent at node B: {again}");
}
