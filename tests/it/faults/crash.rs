//! A crash loses nothing acknowledged: `sesame serve` on PostgreSQL and Redis, rotating refresh
//! tokens and issuing API keys under load, is killed with SIGKILL and started again on the same
//! stores. Every refresh token it answered still rotates, every API key it answered verifies.
//!
//! A rotation cut off by the kill may have committed without its answer reaching the client.
//! Its token is then used, and presented again it is a retry within `tokens.refresh_reuse_grace`
//! (set to its longest, 60 s, well beyond this test): a new pair, not reuse detection. So each
//! chain's last acknowledged token must rotate after the restart either way, and the database
//! must hold exactly the tokens the chain's answers account for, plus one and only one for a
//! rotation that committed unanswered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};
use sesame::admin::users::{self, NewUser};
use sesame::clock::{Clock, SystemClock};
use sesame::crypto::password::Passwords;
use sesame::crypto::secrets::hash_secret;
use sesame::store::Durable;

use crate::support::harness::{Need, Tests};
use crate::support::private_redis::PrivateRedis;
use crate::support::sesame_process::SesameProcess;
use crate::support::sso::{authorize_url, pkce, query_param, redeem, sign_in, Browser, TestClient, PASSWORD};
use crate::support::{base64_kek, http, test_config, Backend, Site, TestDatabase};

pub fn tests(t: &mut Tests) {
    t.test_needing(&[Need::Postgres, Need::RedisServer], "crash_loses_no_acknowledged_rotation_or_api_key", crash_loses_no_acknowledged_rotation_or_api_key);
}

const CHAINS: usize = 8;
const KEY_WRITERS: usize = 2;
const LOAD: Duration = Duration::from_millis(1500);
const THINK: Duration = Duration::from_millis(20);
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

/// The request a worker had going when the process died.
struct LastRequest {
    started: Instant,
    refused_at_connect: bool,
}

impl LastRequest {
    /// Whether the process may have committed it: it was sent before the process was dead, and
    /// not refused at connect. (Its answer never came.)
    fn may_have_committed(&self, dead_at: Instant) -> bool {
        self.started < dead_at && !self.refused_at_connect
    }
}

/// One refresh token rotated again and again: the last token an answer carried.
struct Chain {
    acknowledged: String,
    rotations: i64,
    last: LastRequest,
}

struct Keys {
    acknowledged: Vec<(String, String)>,
    last: LastRequest,
}

async fn rotate_until_killed(base: String, app: Arc<TestClient>, first: String) -> Chain {
    let client = http();
    let (mut acknowledged, mut rotations) = (first, 0);
    loop {
        let started = Instant::now();
        let sent = client
            .post(format!("{base}/token"))
            .basic_auth(&app.id, app.secret.as_ref())
            .form(&[("grant_type", "refresh_token"), ("refresh_token", acknowledged.as_str())])
            .timeout(REQUEST_LIMIT)
            .send()
            .await;
        let res = match sent {
            Ok(res) => res,
            Err(e) => return Chain { acknowledged, rotations, last: LastRequest { started, refused_at_connect: e.is_connect() } },
        };
        let status = res.status();
        match res.json::<Value>().await {
            Ok(body) if status == 200 => {
                acknowledged = body["refresh_token"].as_str().expect("a successor").to_string();
                rotations += 1;
                // A client's moment between requests: the kill finds some chains with nothing sent.
                tokio::time::sleep(THINK).await;
            }
            Ok(body) => panic!("a rotation before the kill was refused: {status} {body}"),
            Err(_) => return Chain { acknowledged, rotations, last: LastRequest { started, refused_at_connect: false } },
        }
    }
}

async fn issue_keys_until_killed(base: String, admin_token: String, writer: usize) -> Keys {
    let client = http();
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let started = Instant::now();
        let sent = client
            .post(format!("{base}/admin/api-keys"))
            .bearer_auth(&admin_token)
            .json(&json!({"name": format!("crash-{writer}-{n}"), "scope": "reports:read"}))
            .timeout(REQUEST_LIMIT)
            .send()
            .await;
        let res = match sent {
            Ok(res) => res,
            Err(e) => return Keys { acknowledged, last: LastRequest { started, refused_at_connect: e.is_connect() } },
        };
        let status = res.status();
        match res.json::<Value>().await {
            Ok(body) if status == 201 => acknowledged.push((body["id"].as_str().unwrap().to_string(), body["key"].as_str().unwrap().to_string())),
            Ok(body) => panic!("an API key before the kill was refused: {status} {body}"),
            Err(_) => return Keys { acknowledged, last: LastRequest { started, refused_at_connect: false } },
        }
    }
    unreachable!()
}

/// alice; a first-party web app ("Portal", refresh tokens with `offline_access`); and an
/// administrator client ("Ops", `sesame:admin`).
async fn register(db: &TestDatabase) -> (Arc<TestClient>, (String, String)) {
    let durable = db.open().await;
    let now = SystemClock.now();
    let passwords = Passwords::new(&test_config(Backend::External).password).unwrap();
    let alice = NewUser { username: "alice", password: PASSWORD, email: None, name: None };
    users::add(durable.as_ref(), &passwords, alice, now).await.unwrap();
    let mut portal = NewClient::new("Portal");
    portal.redirect_uris = vec!["http://127.0.0.1:9/portal/callback".into()];
    portal.first_party = true;
    let created = clients::add(durable.as_ref(), &portal, "test", now).await.unwrap();
    let app = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: portal.redirect_uris[0].clone() };
    let mut ops = NewClient::new("Ops");
    ops.grant_types = vec!["client_credentials".into()];
    ops.scope = Some("sesame:admin".into());
    let created = clients::add(durable.as_ref(), &ops, "test", now).await.unwrap();
    (Arc::new(app), (created.client.id, created.client_secret.unwrap()))
}

async fn admin_token(node: &SesameProcess, ops: &(String, String)) -> String {
    let res = http().post(node.url("/token")).basic_auth(&ops.0, Some(&ops.1)).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

async fn refresh(node: &SesameProcess, app: &TestClient, token: &str) -> (u16, Value) {
    let res = http()
        .post(node.url("/token"))
        .basic_auth(&app.id, app.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Checks one chain after the restart: its last acknowledged token is stored, unrevoked, and
/// unused unless a request cut off by the kill used it; its family holds exactly the tokens its
/// answers account for, plus the successor of that request if it committed; and the token
/// rotates, twice. Whether the cut-off request had committed.
async fn check_chain(i: usize, chain: &Chain, cut_off: bool, durable: &dyn Durable, sql: &mut sqlx::PgConnection, node: &SesameProcess, app: &TestClient) -> bool {
    let stored = durable.refresh_token(&hash_secret(&chain.acknowledged)).await.unwrap();
    let stored = stored.unwrap_or_else(|| panic!("chain {i}: the refresh token of its last answer is not in the database"));
    assert!(stored.revoked_at.is_none(), "chain {i}: revoked");
    let committed = stored.used_at.is_some();
    assert!(!committed || cut_off, "chain {i}: its last acknowledged token was used, with no request in flight");
    let (tokens, used): (i64, i64) = sqlx::query_as("SELECT count(*), count(used_at) FROM refresh_tokens WHERE family_id = $1")
        .bind(&stored.family_id)
        .fetch_one(sql)
        .await
        .unwrap();
    let extra = i64::from(committed);
    assert_eq!((tokens, used), (chain.rotations + 1 + extra, chain.rotations + extra), "chain {i} (cut off: {cut_off}): tokens and used tokens of its family");

    // Fresh, or used by the cut-off request within the reuse grace: either way a new pair.
    let (status, body) = refresh(node, app, &chain.acknowledged).await;
    assert_eq!(status, 200, "chain {i} (cut off: {cut_off}, committed unanswered: {committed}): {body}");
    let (status, body) = refresh(node, app, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "chain {i}: rotating on after the restart: {body}");
    committed
}

async fn crash_loses_no_acknowledged_rotation_or_api_key() {
    let db = TestDatabase::new(Backend::External).await;
    // A Redis of its own: `sesame serve` keys everything under one fixed prefix.
    let (_redis, redis_port) = PrivateRedis::spawn().await;

    let (app, ops) = register(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SESAME_DATABASE_URL", db.url.clone()),
        ("SESAME_REDIS_URL", format!("redis://127.0.0.1:{redis_port}")),
        ("SESAME_KEK", base64_kek()),
        ("SESAME_TOKENS__REFRESH_REUSE_GRACE", "60s".into()),
        ("SESAME_PASSWORD__MEMORY_KIB", "64".into()),
        ("SESAME_PASSWORD__ITERATIONS", "1".into()),
    ];
    let mut node = SesameProcess::serve(dir.path(), &env).await;

    let mut firsts = Vec::new();
    for _ in 0..CHAINS {
        let p = pkce();
        let callback = sign_in(&Browser::new(), &node, &authorize_url(&node, &app, &p, &[("scope", "openid offline_access")]), "alice").await;
        let tokens: Value = redeem(&node, &app, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
        firsts.push(tokens["refresh_token"].as_str().expect("a refresh token").to_string());
    }
    let token = admin_token(&node, &ops).await;
    let chains: Vec<_> = firsts.into_iter().map(|first| tokio::spawn(rotate_until_killed(node.base.clone(), app.clone(), first))).collect();
    let writers: Vec<_> = (0..KEY_WRITERS).map(|w| tokio::spawn(issue_keys_until_killed(node.base.clone(), token.clone(), w))).collect();
    tokio::time::sleep(LOAD).await;
    node.crash();
    let dead_at = Instant::now();
    let mut finished = Vec::new();
    for chain in chains {
        finished.push(tokio::time::timeout(REQUEST_LIMIT, chain).await.expect("a chain noticed the kill").unwrap());
    }
    let (mut keys, mut keys_unanswered) = (Vec::new(), 0);
    for writer in writers {
        let done = tokio::time::timeout(REQUEST_LIMIT, writer).await.expect("a key writer noticed the kill").unwrap();
        keys.extend(done.acknowledged);
        keys_unanswered += usize::from(done.last.may_have_committed(dead_at));
    }
    let first_log = node.log();
    drop(node);

    let node = SesameProcess::serve(dir.path(), &env).await;
    let durable = db.open().await;
    let mut sql = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    let (mut rotations, mut committed_unanswered, mut not_committed, mut not_sent) = (0, 0, 0, 0);
    for (i, chain) in finished.iter().enumerate() {
        let cut_off = chain.last.may_have_committed(dead_at);
        let committed = check_chain(i, chain, cut_off, durable.as_ref(), &mut sql, &node, &app).await;
        rotations += chain.rotations;
        match (cut_off, committed) {
            (true, true) => committed_unanswered += 1,
            (true, false) => not_committed += 1,
            (false, _) => not_sent += 1,
        }
    }

    let token = admin_token(&node, &ops).await;
    for (id, key) in &keys {
        let tested: Value = http().post(node.url("/admin/api-keys/test")).bearer_auth(&token).json(&json!({"key": key})).send().await.unwrap().json().await.unwrap();
        assert_eq!(tested["valid"], true, "API key {id}, acknowledged before the kill: {tested}");
    }
    let listed: Value = http().get(node.url("/admin/api-keys")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let stored = listed["keys"].as_array().unwrap().len();
    assert!((keys.len()..=keys.len() + keys_unanswered).contains(&stored), "{stored} keys stored; {} acknowledged, {keys_unanswered} cut off", keys.len());

    assert!(rotations >= 50 && keys.len() >= 10, "too little load to prove anything: {rotations} rotations, {} keys; {first_log}", keys.len());
    println!(
        "checked {rotations} acknowledged rotations in {CHAINS} chains ({committed_unanswered} cut off after committing, {not_committed} before, \
         {not_sent} between requests), \
         {} acknowledged API keys ({keys_unanswered} cut off, {} of them committed): none lost",
        keys.len(),
        stored - keys.len()
    );
}
