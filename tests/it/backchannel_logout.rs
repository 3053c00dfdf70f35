//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0) over real HTTP, on both backends:
//! when a session ends, each client that received tokens in it and registered a URI gets a
//! logout token it can verify against the JWKS; a client that was down gets its own later (the
//! worker retries on the server's clock); a client without a URI gets nothing; a delivery whose
//! node stopped mid-attempt is taken over by the next node once its lease runs out.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Form;
use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::logout::token::{EVENT, TYP};

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("logout_tokens_reach_every_client_of_the_session_and_one_that_was_down_later", logout_tokens_reach_every_client_of_the_session_and_one_that_was_down_later)
        .each_backend("a_delivery_cut_off_by_a_stopping_node_is_sent_by_the_next_node", a_delivery_cut_off_by_a_stopping_node_is_sent_by_the_next_node);
}

/// A client's back-channel logout endpoint: answers with `status` (or never, while `hang`), and
/// keeps every logout token posted to it with the status it answered.
#[derive(Clone)]
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    hang: Arc<AtomicBool>,
    posts: Arc<Mutex<Vec<(u16, String)>>>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/backchannel-logout", listener.local_addr().unwrap());
        let receiver = Self { url, status: Arc::new(AtomicU16::new(status)), hang: Arc::new(AtomicBool::new(false)), posts: Arc::default() };
        let handler = |State(r): State<Receiver>, Form(form): Form<std::collections::HashMap<String, String>>| async move {
            let status = r.status.load(Ordering::SeqCst);
            r.posts.lock().unwrap().push((status, form.get("logout_token").cloned().unwrap_or_default()));
            if r.hang.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            StatusCode::from_u16(status).unwrap()
        };
        let app = axum::Router::new().route("/backchannel-logout", axum::routing::post(handler)).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        receiver
    }

    fn posts(&self) -> Vec<(u16, String)> {
        self.posts.lock().unwrap().clone()
    }

    /// Waits (at most 15 s) until a post answered `status` arrived; returns its token.
    async fn until(&self, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some((_, token)) = self.posts().into_iter().find(|(s, _)| *s == status) {
                return token;
            }
            assert!(Instant::now() < deadline, "no post answered {status} at {} within 15 s: {:?}", self.url, self.posts());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn client(server: &TestServer, name: &str, backchannel: Option<&Receiver>) -> TestClient {
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![format!("http://127.0.0.1:9/{name}/callback")];
    spec.first_party = true;
    spec.backchannel_logout_uri = backchannel.map(|r| r.url.clone());
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() }
}

/// Signs alice in for `first`, then reaches `others` by single sign-on; the ID token of `first`.
async fn session_with(server: &TestServer, browser: &Browser, first: &TestClient, others: &[&TestClient]) -> Value {
    let p = pkce();
    let callback = sign_in(browser, server, &authorize_url(server, first, &p, &[]), "alice").await;
    let tokens: Value = redeem(server, first, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    for other in others {
        let res = browser.get(&authorize_url(server, other, &pkce(), &[])).await;
        let callback = follow_to_callback(browser, server, absolute(server, &location(&res))).await;
        assert!(query_param(&callback, "code").is_some(), "single sign-on into {}", other.id);
    }
    tokens
}

/// Checks `token` as a client would: signed by a key in sesame's JWKS, typed `logout+jwt`, for
/// `client_id`, about session `sid`, with the logout event and no nonce. Returns its claims.
async fn verified(server: &TestServer, token: &str, client_id: &str, sid: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some(TYP));
    let jwks: jsonwebtoken::jwk::JwkSet = http().get(server.url(sesame::paths::JWKS)).send().await.unwrap().json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the signing key is published");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[server.base.as_str()]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &validation).expect("the logout token verifies").claims;
    assert_eq!(claims["sid"], sid);
    assert!(claims["events"].get(EVENT).is_some(), "{claims}");
    assert!(claims.get("nonce").is_none());
    claims
}

async fn logout_tokens_reach_every_client_of_the_session_and_one_that_was_down_later(backend: Backend) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with_clock(backend, clock.clone(), |_| {}).await;
    let alice = add_user(&server, "alice").await;
    let (up, down) = (Receiver::start(200).await, Receiver::start(503).await);
    let wiki = client(&server, "wiki", Some(&up)).await;
    let chat = client(&server, "chat", Some(&down)).await;
    let mail = client(&server, "mail", None).await;
    let browser = Browser::new();
    let tokens = session_with(&server, &browser, &wiki, &[&chat, &mail]).await;
    let sid = id_claims(&tokens)["sid"].as_str().unwrap().to_string();

    // RP-initiated logout ends the session.
    let res = browser.get(&format!("{}?id_token_hint={}", server.url("/logout"), tokens["id_token"].as_str().unwrap())).await;
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());

    let token = up.until(200).await;
    let claims = verified(&server, &token, &wiki.id, &sid).await;
    assert_eq!(claims["sub"], alice.as_str());
    let refused = down.until(503).await;
    verified(&server, &refused, &chat.id, &sid).await;
    let mut expected = vec![(wiki.id.clone(), true), (chat.id.clone(), false)];
    expected.sort();
    // The outcome is recorded after the client has answered: poll until it is.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outbox = server.state.durable.logouts_of_session(&sid).await.unwrap();
        let mut told: Vec<(String, bool)> = outbox.iter().map(|(d, delivered)| (d.client_id.clone(), delivered.is_some())).collect();
        told.sort();
        if told == expected {
            break;
        }
        assert!(Instant::now() < deadline, "{backend:?}: one delivery per client with a URI, none for the one without: {told:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The client comes back; its retry is due 5 s later on the server's clock.
    down.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(down.posts().iter().all(|(s, _)| *s == 503), "{backend:?}: no retry before its time: {:?}", down.posts());
    clock.advance(6);
    let retried = down.until(200).await;
    let claims = verified(&server, &retried, &chat.id, &sid).await;
    assert_ne!(claims["jti"], jwt_claims(&refused)["jti"], "each attempt signs a new token");
    assert_eq!(up.posts().len(), 1, "{backend:?}: a delivered logout is not sent again");

    // The client has its answer before the server records the outcome: wait for the audit row.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let audit = server.state.durable.recent_audit(None, 100).await.unwrap();
        let delivered = audit.iter().filter(|e| e.kind == "logout.backchannel.delivered").count();
        if delivered == 2 {
            break;
        }
        assert!(delivered < 2 && Instant::now() < deadline, "{backend:?}: {delivered} deliveries audited, expected 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sesame_backchannel_logout_deliveries_total{outcome=\"delivered\"} 2"), "{metrics}");
    assert!(metrics.contains("sesame_backchannel_logout_deliveries_total{outcome=\"retry\"}"), "{metrics}");
    server.stop().await;
}

async fn a_delivery_cut_off_by_a_stopping_node_is_sent_by_the_next_node(backend: Backend) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let first = TestServer::start_with_clock(backend, clock.clone(), |_| {}).await;
    add_user(&first, "alice").await;
    let receiver = Receiver::start(200).await;
    receiver.hang.store(true, Ordering::SeqCst);
    let wiki = client(&first, "wiki", Some(&receiver)).await;
    let browser = Browser::new();
    let tokens = session_with(&first, &browser, &wiki, &[]).await;
    let sid = id_claims(&tokens)["sid"].as_str().unwrap().to_string();
    let res = browser.get(&format!("{}?id_token_hint={}", first.url("/logout"), tokens["id_token"].as_str().unwrap())).await;
    assert!(res.status().is_success() || res.status().is_redirection());

    // The first node's attempt is in flight (the client does not answer) when the node stops.
    receiver.until(200).await;
    let config = (*first.state.config).clone();
    let db = first.stop().await;
    receiver.hang.store(false, Ordering::SeqCst);
    let delivered = |outbox: Vec<(sesame::store::LogoutDelivery, Option<i64>)>| outbox.iter().any(|(_, at)| at.is_some());
    let next = TestServer::start_on(config, clock.clone(), db).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!delivered(next.state.durable.logouts_of_session(&sid).await.unwrap()), "{backend:?}: the lease of the stopped node still holds");
    clock.advance(61);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !delivered(next.state.durable.logouts_of_session(&sid).await.unwrap()) {
        assert!(Instant::now() < deadline, "{backend:?}: the next node never sent the delivery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(receiver.posts().len(), 2, "{backend:?}: the cut-off attempt, then the next node's");
    let (outbox, _) = next.state.durable.logouts_of_session(&sid).await.unwrap().remove(0);
    assert_eq!(outbox.attempts, 2);
    next.stop().await;
}
