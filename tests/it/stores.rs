//! The shared suites every store implementation must pass: the ephemeral contract on the
//! in-process store and Redis, and one test per durable trait on SQLite and PostgreSQL. Each
//! checks the contract as the trait documents it (src/store/mod.rs, src/store/ephemeral/mod.rs).

use sesame::crypto::alg::SigningAlg;
use std::sync::Arc;
use std::time::Duration;

use sesame::store::{ApiKey, AuditEvent, AuthMethod, Client, Durable, RefreshFamily, RefreshToken, StoreError, StoredSigningKey, SsoSession, UpstreamLink, User};
use tokio::sync::Barrier;

use crate::support::harness::{Database, EphemeralKind, Tests};
use crate::support::{ephemeral_of, eventually, TestDatabase};

pub fn tests(t: &mut Tests) {
    t.each_ephemeral("ephemeral_store_contract", ephemeral_store_contract)
        .each_ephemeral("ephemeral_values_and_counters_expire", ephemeral_values_and_counters_expire)
        .each_ephemeral("take_is_atomic_under_contention", take_is_atomic_under_contention)
        .each_ephemeral("ephemeral_publish_reaches_subscribers", ephemeral_publish_reaches_subscribers)
        .each_database("durable_clients", durable_clients)
        .each_database("durable_users", durable_users)
        .each_database("durable_signing_keys", durable_signing_keys)
        .each_database("durable_refresh_tokens", durable_refresh_tokens)
        .each_database("durable_api_keys", durable_api_keys)
        .each_database("durable_consents", durable_consents)
        .each_database("durable_audit", durable_audit)
        .each_database("durable_upstream_identities", durable_upstream_identities)
        .each_database("durable_sso_sessions", durable_sso_sessions)
        .each_database("ending_an_sso_session_revokes_its_grants_once", ending_an_sso_session_revokes_its_grants_once);
}

// ---- Ephemeral ----

async fn ephemeral_store_contract(kind: EphemeralKind) {
    let store = ephemeral_of(kind).await;
    store.ping().await.unwrap();
    let ttl = Duration::from_secs(60);

    store.put("a", b"1", ttl).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"1"[..]), "{kind:?}");
    store.put("a", b"2", ttl).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"2"[..]), "{kind:?}: put replaces");
    assert_eq!(store.take("a").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(store.take("a").await.unwrap(), None, "{kind:?}: taken twice");
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.take("never").await.unwrap(), None);
    assert_eq!(store.get("never").await.unwrap(), None);

    assert!(store.put_if_absent("jti", b"x", ttl).await.unwrap());
    assert!(!store.put_if_absent("jti", b"y", ttl).await.unwrap(), "{kind:?}: replay accepted");
    assert_eq!(store.get("jti").await.unwrap().as_deref(), Some(&b"x"[..]));

    store.put("d", b"1", ttl).await.unwrap();
    store.delete("d").await.unwrap();
    assert_eq!(store.get("d").await.unwrap(), None);
    store.delete("d").await.unwrap();

    assert_eq!(store.incr("n", ttl).await.unwrap(), 1);
    assert_eq!(store.incr("n", ttl).await.unwrap(), 2);
    assert_eq!(store.incr("n", ttl).await.unwrap(), 3);
    assert_eq!(store.get("n").await.unwrap().as_deref(), Some(&b"3"[..]), "{kind:?}: a counter reads as its decimal value");
    assert_eq!(store.add("n", -1, ttl).await.unwrap(), 2, "{kind:?}: a counter can be given back");
    assert_eq!(store.add("fresh", -1, ttl).await.unwrap(), -1, "{kind:?}: a new counter starts at its delta");

    // Sets: members once each, whatever the order of adds; an absent set is empty.
    assert!(store.members("set").await.unwrap().is_empty());
    for member in ["k1 60", "k2 120", "k1 60"] {
        store.add_member("set", member, ttl).await.unwrap();
    }
    let mut members = store.members("set").await.unwrap();
    members.sort();
    assert_eq!(members, ["k1 60", "k2 120"], "{kind:?}: a set holds each member once");
    store.delete("set").await.unwrap();
    assert!(store.members("set").await.unwrap().is_empty(), "{kind:?}: a deleted set is empty");

    // Binary values survive as they are.
    let binary: Vec<u8> = (0..=255).collect();
    store.put("bin", &binary, ttl).await.unwrap();
    assert_eq!(store.get("bin").await.unwrap(), Some(binary));

    // Several values at once, in the order asked: keys sharing a hash tag (one slot of a
    // cluster) and keys that do not (the cluster client splits the read per slot).
    store.put("{fam}:x", b"1", ttl).await.unwrap();
    store.put("{fam}:y", b"2", ttl).await.unwrap();
    assert_eq!(store.get_many(&["{fam}:x", "{fam}:gone", "{fam}:y"]).await.unwrap(), vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())], "{kind:?}");
    let spread: Vec<String> = (0..12).map(|i| format!("spread{i}")).collect();
    for (i, key) in spread.iter().enumerate() {
        store.put(key, i.to_string().as_bytes(), ttl).await.unwrap();
    }
    let asked: Vec<&str> = spread.iter().map(String::as_str).rev().chain(["never"]).collect();
    let expected: Vec<Option<Vec<u8>>> = (0..12).rev().map(|i: usize| Some(i.to_string().into_bytes())).chain([None]).collect();
    assert_eq!(store.get_many(&asked).await.unwrap(), expected, "{kind:?}: keys of many slots");

    // Two stores are two keyspaces.
    let other = ephemeral_of(kind).await;
    assert_eq!(other.get("jti").await.unwrap(), None, "{kind:?}: stores share keys");
    assert_eq!(store.backend(), match kind {
        EphemeralKind::Memory => "memory",
        EphemeralKind::Redis => "redis",
        EphemeralKind::RedisCluster => "redis cluster",
    });
}

/// Expiry is real time here (Redis PX, `Instant` in process), so the test waits; it polls with
/// a bound instead of sleeping a fixed time, and checks the values were there to begin with.
async fn ephemeral_values_and_counters_expire(kind: EphemeralKind) {
    let store = ephemeral_of(kind).await;
    // Long enough that the calls below all happen before it passes, even on a loaded machine.
    let short = Duration::from_secs(1);
    store.put("e", b"1", short).await.unwrap();
    assert_eq!(store.incr("c", short).await.unwrap(), 1);
    assert_eq!(store.incr("c", Duration::from_secs(60)).await.unwrap(), 2, "later increments keep the first TTL");
    assert!(!store.put_if_absent("e", b"2", short).await.unwrap());
    store.add_member("s", "a", short).await.unwrap();
    store.add_member("s", "b", Duration::from_secs(60)).await.unwrap();
    store.put("long", b"1", Duration::from_secs(60)).await.unwrap();

    eventually(Duration::from_secs(10), &format!("{kind:?}: a 1 s value to expire"), || async { store.get("e").await.unwrap().is_none().then_some(()) }).await;
    assert_eq!(store.take("e").await.unwrap(), None);
    eventually(Duration::from_secs(10), &format!("{kind:?}: a 1 s counter to expire (a later increment must not extend it)"), || async {
        store.get("c").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), &format!("{kind:?}: a 1 s set to expire (a later add must not extend it)"), || async {
        store.members("s").await.unwrap().is_empty().then_some(())
    })
    .await;
    assert_eq!(store.incr("c", short).await.unwrap(), 1, "{kind:?}: counter did not start over");
    assert!(store.put_if_absent("e", b"2", short).await.unwrap());
    assert_eq!(store.get("long").await.unwrap().as_deref(), Some(&b"1"[..]), "{kind:?}: a 60 s value expired early");
}

/// 16 tasks on the trial's multi-threaded runtime, released at once by a barrier, take the same
/// key: exactly one gets the value. Repeated so a lucky interleaving cannot hide a race.
async fn take_is_atomic_under_contention(kind: EphemeralKind) {
    let store = ephemeral_of(kind).await;
    assert!(tokio::runtime::Handle::current().metrics().num_workers() >= 2, "contention needs more than one worker thread");
    for round in 0..20 {
        let key = format!("code{round}");
        store.put(&key, b"v", Duration::from_secs(60)).await.unwrap();
        let barrier = Arc::new(Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (s, barrier, key) = (store.clone(), barrier.clone(), key.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.take(&key).await.unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            if let Some(v) = t.await.unwrap() {
                winners.push(v);
            }
        }
        assert_eq!(winners, vec![b"v".to_vec()], "{kind:?} round {round}: {} callers got the value", winners.len());
        assert_eq!(store.get(&key).await.unwrap(), None);
    }
}

/// Publishes `message` on `channel` until `rx` hears it (a Redis subscription is made in the
/// background); at most 10 s.
async fn publish_until_heard(store: &dyn sesame::store::Ephemeral, channel: &str, message: &[u8], rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        store.publish(channel, message).await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            assert_eq!(m, message, "the first message heard on {channel}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no message reached the subscriber of {channel} within 10 s");
    }
}

/// The next message on `rx` other than `skip` (repeats sent while subscribing), within 5 s.
async fn next_message(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>, skip: &[u8]) -> Option<Vec<u8>> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Some(m) if m == skip => continue,
                m => return m,
            }
        }
    })
    .await
    .expect("a message within 5 s")
}

async fn ephemeral_publish_reaches_subscribers(kind: EphemeralKind) {
    let store = ephemeral_of(kind).await;
    // `other` listens before anything is said on `news`.
    let mut other = store.subscribe("other");
    publish_until_heard(store.as_ref(), "other", b"ready", &mut other).await;
    let mut news = store.subscribe("news");
    publish_until_heard(store.as_ref(), "news", b"hello", &mut news).await;
    store.publish("news", b"second").await.unwrap();
    assert_eq!(next_message(&mut news, b"hello").await.as_deref(), Some(&b"second"[..]), "{kind:?}");
    // Another channel's subscriber heard none of it: its next message is its own.
    store.publish("other", b"own").await.unwrap();
    assert_eq!(next_message(&mut other, b"ready").await.as_deref(), Some(&b"own"[..]), "{kind:?}: a message of another channel was delivered");
    // A second subscriber of one channel hears the same messages.
    let mut also = store.subscribe("news");
    publish_until_heard(store.as_ref(), "news", b"again", &mut also).await;
    assert_eq!(next_message(&mut news, b"hello").await.as_deref(), Some(&b"again"[..]));
}

// ---- Durable ----

pub(crate) async fn store_for(database: Database) -> (TestDatabase, Arc<dyn Durable>) {
    let db = TestDatabase::of(database).await;
    let store = db.open().await;
    store.ping().await.unwrap();
    assert_eq!(store.backend(), database.name());
    (db, store)
}

pub(crate) fn is_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        name: "App".into(),
        secret_hash: Some(vec![1, 2, 3]),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid".into(), "email".into()],
        jwks_uri: None,
        jwks: None,
        first_party: true,
        access_token_alg: Some(SigningAlg::ES256),
        access_token_ttl: Some(300),
        created_at: 1_700_000_000,
        require_mfa: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        tls_client_auth_subject_dn: None,
        tls_client_auth_san_dns: None,
        require_dpop: false,
        require_par: false,
    }
}

async fn durable_clients(database: Database) {
    let (_db, store) = store_for(database).await;
    let c = client("c1");
    store.insert_client(&c, &audit_event("client.add", "c1")).await.unwrap();
    assert_eq!(store.client("c1").await.unwrap(), Some(c.clone()), "{database:?}: round trip");
    assert!(is_conflict(store.insert_client(&c, &audit_event("client.add", "c1")).await), "{database:?}: a second client with one id");
    assert_eq!(store.client("nope").await.unwrap(), None);
    let mut public = client("c2");
    public.secret_hash = None;
    public.auth_method = AuthMethod::None;
    public.access_token_alg = None;
    public.access_token_ttl = None;
    public.jwks_uri = Some("https://app.example.com/jwks".into());
    public.jwks = Some("{\"keys\":[]}".into());
    public.post_logout_redirect_uris = vec!["https://app.example.com/bye".into()];
    public.first_party = false;
    store.insert_client(&public, &audit_event("client.add", "c2")).await.unwrap();
    assert_eq!(store.clients().await.unwrap().len(), 2);
    assert_eq!(store.client("c2").await.unwrap(), Some(public));
    assert!(store.set_client_secret_hash("c1", &[9; 32], &audit_event("client.rotate_secret", "c1")).await.unwrap());
    assert_eq!(store.client("c1").await.unwrap().unwrap().secret_hash, Some(vec![9; 32]));
    assert!(!store.set_client_secret_hash("nope", &[9; 32], &audit_event("client.rotate_secret", "nope")).await.unwrap());
    assert!(store.delete_client("c1", &audit_event("client.remove", "c1")).await.unwrap());
    assert!(!store.delete_client("c1", &audit_event("client.remove", "c1")).await.unwrap());
    assert_eq!(store.client("c1").await.unwrap(), None);
    assert_eq!(store.clients().await.unwrap().iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec!["c2"]);
    // Each change commits with its event; a refused one (the duplicate, the missing client, the
    // second removal) records nothing.
    let kinds = |events: Vec<AuditEvent>| events.into_iter().map(|e| e.kind).collect::<Vec<_>>();
    assert_eq!(kinds(store.recent_audit(Some("c1"), 10).await.unwrap()), vec!["client.add", "client.rotate_secret", "client.remove"], "{database:?}");
    assert!(store.recent_audit(Some("nope"), 10).await.unwrap().is_empty(), "{database:?}");
}

async fn durable_users(database: Database) {
    let (_db, store) = store_for(database).await;
    let u = User {
        sub: "s1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        email: Some("alice@example.com".into()),
        name: None,
        disabled: false,
        created_at: 5,
    };
    store.insert_user(&u).await.unwrap();
    assert_eq!(store.user_by_username("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(store.user("s1").await.unwrap(), Some(u.clone()));
    assert_eq!(store.user("s9").await.unwrap(), None);
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
    let mut dup = u.clone();
    dup.sub = "s2".into();
    assert!(is_conflict(store.insert_user(&dup).await), "{database:?}: usernames are unique");
    let mut same_sub = u.clone();
    same_sub.username = "alicia".into();
    assert!(is_conflict(store.insert_user(&same_sub).await), "{database:?}: subs are unique");
    assert!(store.set_password_hash("alice", "$argon2id$y").await.unwrap());
    assert!(store.set_user_disabled("alice", true).await.unwrap());
    let now = store.user("s1").await.unwrap().unwrap();
    assert_eq!((now.password_hash.as_str(), now.disabled), ("$argon2id$y", true));
    assert!(store.set_user_disabled("alice", false).await.unwrap());
    assert!(!store.user("s1").await.unwrap().unwrap().disabled);
    assert!(!store.set_user_disabled("bob", true).await.unwrap());
    assert!(!store.set_password_hash("bob", "$argon2id$z").await.unwrap());
    let bob = User { sub: "s3".into(), username: "bob".into(), name: Some("Bob".into()), email: None, ..u.clone() };
    store.insert_user(&bob).await.unwrap();
    assert_eq!(store.users().await.unwrap().len(), 2);
    assert_eq!(store.user_by_username("bob").await.unwrap(), Some(bob));
}

async fn durable_signing_keys(database: Database) {
    let (_db, store) = store_for(database).await;
    let key = |kid: &str| StoredSigningKey {
        kid: kid.into(),
        alg: SigningAlg::ES256,
        private_key_sealed: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: 1,
        activates_at: 2,
    };
    let g0 = store.key_generation(SigningAlg::ES256).await.unwrap();
    assert!(store.change_keys(SigningAlg::ES256, g0, Some(&key("k1")), &[]).await.unwrap());
    assert!(!store.change_keys(SigningAlg::ES256, g0, Some(&key("k2")), &[]).await.unwrap(), "{database:?}: stale generation accepted");
    assert_eq!(store.signing_keys().await.unwrap(), vec![key("k1")], "a lost compare-and-set changes nothing");
    let g1 = store.key_generation(SigningAlg::ES256).await.unwrap();
    assert_eq!(g1, g0 + 1);
    assert!(store.change_keys(SigningAlg::ES256, g1, Some(&key("k2")), &["k1".to_string()]).await.unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), vec![key("k2")]);
    assert_eq!(store.key_generation(SigningAlg::RS256).await.unwrap(), 0, "generations are per algorithm");

    // Several nodes racing with the same expected generation: exactly one wins.
    let g2 = store.key_generation(SigningAlg::ES256).await.unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.change_keys(SigningAlg::ES256, g2, Some(&key(&format!("racer{i}"))), &[]).await.unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        wins += r.await.unwrap() as usize;
    }
    assert_eq!(wins, 1, "{database:?}: {wins} nodes changed the key set from one generation");
    assert_eq!(store.key_generation(SigningAlg::ES256).await.unwrap(), g2 + 1);
    assert_eq!(store.signing_keys().await.unwrap().len(), 2, "the winner's key and k2");
}

pub(crate) fn family(id: &str) -> RefreshFamily {
    RefreshFamily { id: id.into(), client_id: "c1".into(), sub: "s1".into(), created_at: 100, absolute_expires_at: 10_000, dpop_jkt: None, x5t_s256: None }
}

pub(crate) fn refresh_token(hash: u8, family: &str) -> RefreshToken {
    RefreshToken {
        token_hash: vec![hash; 32],
        family_id: family.into(),
        client_id: "c1".into(),
        sub: "s1".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        auth_time: Some(90),
        sid: Some("sid-1".into()),
        created_at: 100,
        idle_expires_at: 5_000,
        absolute_expires_at: 10_000,
        used_at: None,
        revoked_at: None,
        dpop_jkt: None,
        x5t_s256: None,
    }
}

async fn durable_refresh_tokens(database: Database) {
    let (_db, store) = store_for(database).await;
    let t1 = refresh_token(1, "f1");
    store.start_refresh_family(&family("f1"), &t1, "jti-old", 250).await.unwrap();
    assert!(is_conflict(store.start_refresh_family(&family("f1"), &refresh_token(4, "f1"), "jti-4", 9_000).await), "{database:?}: one family id twice");
    assert_eq!(store.refresh_token(&t1.token_hash).await.unwrap(), Some(t1.clone()), "{database:?}: round trip");
    assert!(is_conflict(store.add_refresh_successor(&t1, "jti-5", 9_000).await), "{database:?}: one token hash twice");
    assert_eq!(store.refresh_token(&[7; 32]).await.unwrap(), None);
    let mut other_family = family("f2");
    other_family.absolute_expires_at = 20_000;
    let mut t9 = refresh_token(9, "f2");
    (t9.auth_time, t9.sid) = (None, None);
    store.start_refresh_family(&other_family, &t9, "jti-other", 9_000).await.unwrap();
    assert_eq!(store.refresh_token(&t9.token_hash).await.unwrap().unwrap().absolute_expires_at, 20_000, "absolute expiry comes from the family");
    assert_eq!(store.refresh_token(&t9.token_hash).await.unwrap().unwrap().sid, None);

    // Rotation's compare-and-set: of many concurrent callers exactly one rotates the token, and
    // only its successor is stored.
    let barrier = Arc::new(Barrier::new(8));
    let callers: Vec<_> = (0..8u8)
        .map(|i| {
            let (store, barrier, hash) = (store.clone(), barrier.clone(), t1.token_hash.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.rotate_refresh_token(&hash, 200, &refresh_token(20 + i, "f1"), &format!("jti-race-{i}"), 9_000).await.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, c) in callers.into_iter().enumerate() {
        if c.await.unwrap() {
            winners.push(i as u8);
        }
    }
    assert_eq!(winners.len(), 1, "{database:?}: {winners:?} rotated one refresh token");
    let winner = winners[0];
    for i in 0..8u8 {
        let stored = store.refresh_token(&[20 + i; 32]).await.unwrap();
        assert_eq!(stored.is_some(), i == winner, "{database:?}: successor {i} stored: {stored:?}");
    }
    assert!(!store.rotate_refresh_token(&t1.token_hash, 300, &refresh_token(30, "f1"), "jti-late", 9_000).await.unwrap(), "the second caller loses");
    assert_eq!(store.refresh_token(&[30; 32]).await.unwrap(), None, "{database:?}: a losing rotation stored its successor");
    assert_eq!(store.refresh_token(&t1.token_hash).await.unwrap().unwrap().used_at, Some(200), "the first use is kept");
    assert!(!store.rotate_refresh_token(&[7; 32], 200, &refresh_token(31, "f1"), "jti-unknown", 9_000).await.unwrap(), "an unknown token");
    assert_eq!(store.refresh_token(&[31; 32]).await.unwrap(), None);

    // A grace retry's successor, beside the first one; the presented token is left as it was.
    let t2 = refresh_token(2, "f1");
    store.add_refresh_successor(&t2, "jti-live", 9_000).await.unwrap();
    assert_eq!(store.refresh_token(&t2.token_hash).await.unwrap(), Some(t2.clone()));
    assert_eq!(store.refresh_token(&t1.token_hash).await.unwrap().unwrap().used_at, Some(200));

    // Revoking the family: every token of it is revoked; its unexpired access tokens come back.
    let mut live = store.revoke_refresh_family("f1", 300).await.unwrap();
    live.sort();
    let mut expected = vec![(format!("jti-race-{winner}"), 9_000), ("jti-live".to_string(), 9_000)];
    expected.sort();
    assert_eq!(live, expected, "{database:?}: only unexpired access tokens of this family, and only those of committed rotations");
    for hash in [&t1.token_hash, &t2.token_hash, &vec![20 + winner; 32]] {
        assert_eq!(store.refresh_token(hash).await.unwrap().unwrap().revoked_at, Some(300), "{database:?}");
    }
    assert!(!store.rotate_refresh_token(&t2.token_hash, 310, &refresh_token(32, "f1"), "jti-32", 9_000).await.unwrap(), "{database:?}: a revoked token was rotated");
    // A token added to a revoked family (a rotation racing the revocation) reads as revoked.
    let late = refresh_token(3, "f1");
    store.add_refresh_successor(&late, "jti-3", 9_000).await.unwrap();
    assert_eq!(store.refresh_token(&late.token_hash).await.unwrap().unwrap().revoked_at, Some(300), "{database:?}: the family's revocation");
    assert!(!store.rotate_refresh_token(&late.token_hash, 320, &refresh_token(33, "f1"), "jti-33", 9_000).await.unwrap(), "{database:?}: a token of a revoked family was rotated");
    // Other families are untouched; an unknown family has nothing to revoke.
    assert_eq!(store.refresh_token(&t9.token_hash).await.unwrap().unwrap().revoked_at, None);
    assert!(store.revoke_refresh_family("nope", 300).await.unwrap().is_empty());
    assert_eq!(store.revoke_refresh_family("f2", 400).await.unwrap(), vec![("jti-other".to_string(), 9_000)]);
    assert_eq!(store.refresh_token(&t9.token_hash).await.unwrap().unwrap().revoked_at, Some(400));
}

pub(crate) fn api_key(id: &str, hash: u8, created_at: i64) -> ApiKey {
    ApiKey {
        id: id.into(),
        name: format!("key {id}"),
        env: "prod".into(),
        key_hash: vec![hash; 32],
        prefix: "ses_prod_Ab12".into(),
        scopes: vec!["reports:read".into(), "reports:write".into()],
        created_at,
        expires_at: created_at + 86_400,
        cidrs: vec!["10.0.0.0/8".into()],
        rate_limit_per_minute: 60,
        metadata: serde_json::json!({"team": "billing", "n": 1}),
        last_used_at: None,
        last_used_from: None,
        revoked_at: None,
        grace_until: None,
        replaced_by: None,
    }
}

/// An admin change's audit event, as the store takes it with the change.
pub(crate) fn audit_event(kind: &str, subject: &str) -> AuditEvent {
    AuditEvent {
        id: 0,
        at: 1_000,
        kind: kind.into(),
        subject: subject.into(),
        caller: Some("admin".into()),
        result: "ok".into(),
        reason: None,
        details: serde_json::json!({}),
    }
}

async fn durable_api_keys(database: Database) {
    let (_db, store) = store_for(database).await;
    let generated = |id: &str| audit_event("api_key.generate", id);
    let k1 = api_key("ak_1", 1, 100);
    store.insert_api_key(&k1, &generated("ak_1")).await.unwrap();
    assert_eq!(store.api_key("ak_1").await.unwrap(), Some(k1.clone()), "{database:?}: round trip");
    assert_eq!(store.api_key_by_hash(&k1.key_hash).await.unwrap(), Some(k1.clone()));
    assert_eq!(store.api_key("ak_9").await.unwrap(), None);
    assert_eq!(store.api_key_by_hash(&[9; 32]).await.unwrap(), None);
    assert!(is_conflict(store.insert_api_key(&api_key("ak_1", 5, 100), &generated("ak_1")).await), "{database:?}: one id twice");
    assert!(is_conflict(store.insert_api_key(&api_key("ak_5", 1, 100), &generated("ak_5")).await), "{database:?}: one key hash twice");
    let mut k2 = api_key("ak_2", 2, 50);
    (k2.cidrs, k2.metadata) = (vec![], serde_json::json!({}));
    store.insert_api_key(&k2, &generated("ak_2")).await.unwrap();
    store.insert_api_key(&api_key("ak_3", 3, 100), &generated("ak_3")).await.unwrap();
    let ids: Vec<String> = store.api_keys().await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, vec!["ak_2", "ak_1", "ak_3"], "{database:?}: listed by creation, then id");

    // Rotate: the successor is inserted as the old key is retired; a retired key is live until revoked.
    let rotated = |id: &str| audit_event("api_key.rotate", id);
    assert!(store.rotate_api_key("ak_1", &api_key("ak_4", 4, 200), 500, &rotated("ak_1")).await.unwrap());
    let retired = store.api_key("ak_1").await.unwrap().unwrap();
    assert_eq!((retired.replaced_by.as_deref(), retired.grace_until, retired.revoked_at), (Some("ak_4"), Some(500), None));
    assert_eq!(store.api_key("ak_4").await.unwrap(), Some(api_key("ak_4", 4, 200)));
    assert!(!store.rotate_api_key("ak_1", &api_key("ak_6", 6, 200), 900, &rotated("ak_1")).await.unwrap(), "{database:?}: a retired key retired again");
    assert_eq!(store.api_key("ak_1").await.unwrap().unwrap().replaced_by.as_deref(), Some("ak_4"), "the first successor stays");
    assert_eq!(store.api_key("ak_6").await.unwrap(), None, "{database:?}: a refused rotation inserted its successor");
    assert!(!store.rotate_api_key("ak_9", &api_key("ak_7", 7, 200), 900, &rotated("ak_9")).await.unwrap(), "an unknown key");
    assert_eq!(store.api_key("ak_7").await.unwrap(), None);

    // Revoke: once; a revoked key cannot be rotated; unknown keys are not found.
    let revoked = |id: &str| audit_event("api_key.revoke", id);
    assert!(store.revoke_api_key("ak_2", 600, &key_tokens("ak_2", 600), &revoked("ak_2")).await.unwrap());
    assert!(!store.revoke_api_key("ak_2", 700, &key_tokens("ak_2", 700), &revoked("ak_2")).await.unwrap(), "{database:?}: revoked twice");
    assert_eq!(store.api_key("ak_2").await.unwrap().unwrap().revoked_at, Some(600), "the first revocation's time is kept");
    assert!(!store.rotate_api_key("ak_2", &api_key("ak_8", 8, 200), 900, &rotated("ak_2")).await.unwrap(), "{database:?}: a revoked key was rotated");
    assert!(!store.revoke_api_key("ak_9", 600, &key_tokens("ak_9", 600), &revoked("ak_9")).await.unwrap());
    assert!(store.revoke_api_key("ak_1", 650, &key_tokens("ak_1", 650), &revoked("ak_1")).await.unwrap(), "a retired key within its grace is still live, so revocable");

    // Each change wrote its audit event; a refused one wrote none.
    let kinds = |events: Vec<AuditEvent>| events.into_iter().map(|e| e.kind).collect::<Vec<_>>();
    assert_eq!(kinds(store.recent_audit(Some("ak_1"), 10).await.unwrap()), vec!["api_key.generate", "api_key.rotate", "api_key.revoke"], "{database:?}");
    assert_eq!(kinds(store.recent_audit(Some("ak_2"), 10).await.unwrap()), vec!["api_key.generate", "api_key.revoke"], "{database:?}");
    for id in ["ak_5", "ak_9"] {
        assert!(store.recent_audit(Some(id), 10).await.unwrap().is_empty(), "{database:?}: a refused change of {id} was audited");
    }

    // Touch: last use and where from.
    store.touch_api_key("ak_3", 800, Some("10.1.2.3")).await.unwrap();
    let touched = store.api_key("ak_3").await.unwrap().unwrap();
    assert_eq!((touched.last_used_at, touched.last_used_from.as_deref()), (Some(800), Some("10.1.2.3")));
    store.touch_api_key("ak_3", 900, None).await.unwrap();
    let touched = store.api_key("ak_3").await.unwrap().unwrap();
    assert_eq!((touched.last_used_at, touched.last_used_from.clone()), (Some(900), None));
    assert_eq!(store.api_key_by_hash(&[3; 32]).await.unwrap(), Some(touched), "by hash and by id agree");
}

async fn durable_consents(database: Database) {
    let (_db, store) = store_for(database).await;
    let scopes = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(store.consented_scopes("s1", "c1").await.unwrap().is_empty(), "none yet");
    store.save_consent("s1", "c1", &scopes(&["openid", "email"]), 10).await.unwrap();
    assert_eq!(store.consented_scopes("s1", "c1").await.unwrap(), scopes(&["openid", "email"]), "{database:?}");
    // Saving again replaces the earlier grant (the caller merges what it wants kept).
    store.save_consent("s1", "c1", &scopes(&["openid"]), 20).await.unwrap();
    assert_eq!(store.consented_scopes("s1", "c1").await.unwrap(), scopes(&["openid"]), "{database:?}: upsert");
    // Per user and client.
    store.save_consent("s1", "c2", &scopes(&["profile"]), 30).await.unwrap();
    store.save_consent("s2", "c1", &scopes(&["email"]), 30).await.unwrap();
    assert_eq!(store.consented_scopes("s1", "c2").await.unwrap(), scopes(&["profile"]));
    assert_eq!(store.consented_scopes("s2", "c1").await.unwrap(), scopes(&["email"]));
    assert_eq!(store.consented_scopes("s1", "c1").await.unwrap(), scopes(&["openid"]));
    store.revoke_consent("s1", "c1").await.unwrap();
    assert!(store.consented_scopes("s1", "c1").await.unwrap().is_empty(), "{database:?}: revoked");
    assert_eq!(store.consented_scopes("s1", "c2").await.unwrap(), scopes(&["profile"]), "only that grant");
    store.revoke_consent("s1", "c1").await.unwrap();
    store.revoke_consent("nobody", "nothing").await.unwrap();
}

async fn durable_audit(database: Database) {
    let (_db, store) = store_for(database).await;
    let event = |kind: &str, subject: &str, caller: Option<&str>| AuditEvent {
        id: 0,
        at: 1_000,
        kind: kind.into(),
        subject: subject.into(),
        caller: caller.map(str::to_string),
        result: "ok".into(),
        reason: None,
        details: serde_json::json!({}),
    };
    assert!(store.recent_audit(None, 10).await.unwrap().is_empty());
    // All in the same second: the order is the order of appending, not of `at`.
    let mut appended = Vec::new();
    for i in 0..6 {
        let subject = if i % 2 == 0 { "ak_a" } else { "ak_b" };
        let mut e = event(&format!("api_key.e{i}"), subject, (i == 1).then_some("10.0.0.1"));
        if i == 3 {
            (e.result, e.reason, e.details) = ("denied".into(), Some("revoked".into()), serde_json::json!({"n": 3, "list": ["x"]}));
        }
        store.append_audit(&e).await.unwrap();
        appended.push(e);
    }
    let all = store.recent_audit(None, 100).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["api_key.e0", "api_key.e1", "api_key.e2", "api_key.e3", "api_key.e4", "api_key.e5"], "{database:?}: oldest first");
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "{database:?}: ids increase: {all:?}");
    for (stored, sent) in all.iter().zip(&appended) {
        assert_eq!(AuditEvent { id: 0, ..stored.clone() }, *sent, "{database:?}: round trip");
    }
    // The newest `limit`, still oldest first.
    let newest: Vec<String> = store.recent_audit(None, 2).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(newest, vec!["api_key.e4", "api_key.e5"]);
    // About one subject.
    let b: Vec<String> = store.recent_audit(Some("ak_b"), 100).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(b, vec!["api_key.e1", "api_key.e3", "api_key.e5"]);
    let b: Vec<String> = store.recent_audit(Some("ak_b"), 2).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(b, vec!["api_key.e3", "api_key.e5"]);
    assert!(store.recent_audit(Some("ak_none"), 10).await.unwrap().is_empty());
}

/// The denial of the tokens bought with API key `id`, revoked at `now`.
fn key_tokens(id: &str, now: i64) -> sesame::store::Denial {
    sesame::tokens::deny_list::client_denial(id, std::time::Duration::from_secs(300), now)
}

async fn durable_upstream_identities(database: Database) {
    let (_db, store) = store_for(database).await;
    let user = |sub: &str, username: &str, email: Option<&str>| User {
        sub: sub.into(),
        username: username.into(),
        password_hash: "!upstream".into(),
        email: email.map(str::to_string),
        name: None,
        disabled: false,
        created_at: 1,
    };
    let link = |subject: &str, sub: &str| UpstreamLink { provider_id: "corp".into(), upstream_subject: subject.into(), sub: sub.into(), created_at: 10, last_sign_in_at: 10 };
    let audit = |kind: &str| AuditEvent { id: 0, at: 10, kind: kind.into(), subject: "x".into(), caller: None, result: "ok".into(), reason: None, details: serde_json::json!({}) };
    assert_eq!(store.upstream_link("corp", "u-1").await.unwrap(), None);

    // A first sign-in creates the user and the link together, with the audit event.
    let ada = user("s-ada", "ada", Some("Ada@Corp.Example"));
    store.insert_upstream_link(&link("u-1", "s-ada"), Some(&ada), &audit("upstream.user.create")).await.unwrap();
    assert_eq!(store.upstream_link("corp", "u-1").await.unwrap(), Some(link("u-1", "s-ada")));
    assert_eq!(store.user("s-ada").await.unwrap(), Some(ada.clone()));
    assert_eq!(store.upstream_link("other", "u-1").await.unwrap(), None, "{database:?}: the link is per provider");
    assert_eq!(store.recent_audit(Some("x"), 10).await.unwrap().len(), 1);

    // Nothing is written when any part conflicts: a taken username, a linked identity, a second
    // identity of the same provider for one user.
    let taken = user("s-other", "ada", None);
    assert!(is_conflict(store.insert_upstream_link(&link("u-2", "s-other"), Some(&taken), &audit("a")).await), "{database:?}: username taken");
    assert_eq!(store.user("s-other").await.unwrap(), None, "{database:?}: no user without its link");
    assert_eq!(store.upstream_link("corp", "u-2").await.unwrap(), None);
    let bob = user("s-bob", "bob", Some("bob@corp.example"));
    store.insert_user(&bob).await.unwrap();
    assert!(is_conflict(store.insert_upstream_link(&link("u-1", "s-bob"), None, &audit("a")).await), "{database:?}: identity linked already");
    assert!(is_conflict(store.insert_upstream_link(&link("u-3", "s-ada"), None, &audit("a")).await), "{database:?}: one identity per provider per user");
    store.insert_upstream_link(&UpstreamLink { provider_id: "partner".into(), ..link("u-3", "s-ada") }, None, &audit("a")).await.unwrap();
    assert_eq!(store.recent_audit(Some("x"), 10).await.unwrap().len(), 2, "{database:?}: refused writes left no audit event");

    // Emails are found case-insensitively.
    let found = store.users_by_email("ada@corp.example").await.unwrap();
    assert_eq!(found.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["ada"]);
    store.insert_user(&user("s-ada2", "ada2", Some("ADA@corp.example"))).await.unwrap();
    assert_eq!(store.users_by_email("ada@corp.example").await.unwrap().len(), 2);
    assert!(store.users_by_email("nobody@corp.example").await.unwrap().is_empty());

    // Each sign-in replaces the groups.
    assert!(store.user_groups("s-ada").await.unwrap().is_empty());
    store.record_upstream_sign_in(&link("u-1", "s-ada"), &["eng".into(), "admins".into()], 20).await.unwrap();
    assert_eq!(store.user_groups("s-ada").await.unwrap(), ["eng", "admins"]);
    assert_eq!(store.upstream_link("corp", "u-1").await.unwrap().unwrap().last_sign_in_at, 20);
    store.record_upstream_sign_in(&link("u-1", "s-ada"), &[], 30).await.unwrap();
    assert!(store.user_groups("s-ada").await.unwrap().is_empty(), "{database:?}: groups left upstream are gone");
}

// ---- SSO session registry ----

fn user(sub: &str, username: &str) -> User {
    User { sub: sub.into(), username: username.into(), password_hash: "$argon2id$x".into(), email: None, name: None, disabled: false, created_at: 5 }
}

fn sso_session(sid: &str, sub: &str, created_at: i64, expires_at: i64) -> SsoSession {
    SsoSession {
        sid: sid.into(),
        sub: sub.into(),
        key_hash: format!("hash-of-{sid}"),
        created_at,
        auth_time: created_at,
        factor_proven_at: None,
        amr: vec!["pwd".into()],
        last_seen_at: created_at,
        expires_at,
        absolute_expires_at: created_at + 86_400,
        ip: Some("192.0.2.7".into()),
        user_agent: Some("Mozilla/5.0 (test)".into()),
        ended_at: None,
        end_reason: None,
    }
}

/// Two users, clients c1 and c2, and alice's sessions: `sa` and `sb` live, `sx` expired at 150.
async fn registry_with_sessions(store: &dyn Durable) {
    store.insert_user(&user("s1", "alice")).await.unwrap();
    store.insert_user(&user("s2", "bob")).await.unwrap();
    store.insert_client(&client("c1"), &audit_event("client.add", "c1")).await.unwrap();
    store.insert_client(&client("c2"), &audit_event("client.add", "c2")).await.unwrap();
    for s in [sso_session("sa", "s1", 100, 5_000), sso_session("sb", "s1", 110, 5_000), sso_session("sx", "s1", 90, 150), sso_session("so", "s2", 120, 5_000)] {
        store.insert_sso_session(&s).await.unwrap();
    }
}

async fn durable_sso_sessions(database: Database) {
    let (_db, store) = store_for(database).await;
    registry_with_sessions(store.as_ref()).await;
    assert_eq!(store.sso_session("sa").await.unwrap(), Some(sso_session("sa", "s1", 100, 5_000)), "{database:?}: round trip");
    assert_eq!(store.sso_session("nope").await.unwrap(), None);
    assert!(is_conflict(store.insert_sso_session(&sso_session("sa", "s1", 100, 5_000)).await), "{database:?}: one sid twice");

    // A client is recorded once, however many codes it gets; the first time is kept.
    store.record_sso_session_client("sa", "c2", 200).await.unwrap();
    store.record_sso_session_client("sa", "c1", 210).await.unwrap();
    store.record_sso_session_client("sa", "c2", 220).await.unwrap();
    store.record_sso_session_client("so", "c1", 230).await.unwrap();

    let live = store.live_sso_sessions(Some("s1"), 200).await.unwrap();
    let sids: Vec<&str> = live.iter().map(|l| l.session.sid.as_str()).collect();
    assert_eq!(sids, vec!["sb", "sa"], "{database:?}: alice's live sessions, newest first, not the expired one");
    assert_eq!(live[1].clients, vec!["c2".to_string(), "c1".to_string()], "{database:?}: first client first, each once");
    assert!(live[0].clients.is_empty());
    let everyone = store.live_sso_sessions(None, 200).await.unwrap();
    let sids: Vec<&str> = everyone.iter().map(|l| l.session.sid.as_str()).collect();
    assert_eq!(sids, vec!["so", "sb", "sa"], "{database:?}");
    assert_eq!(everyone[0].clients, vec!["c1".to_string()]);

    // Touching moves the idle expiry; a second factor updates amr.
    assert!(store.touch_sso_session("sa", 300, 6_000).await.unwrap());
    let row = store.sso_session("sa").await.unwrap().unwrap();
    assert_eq!((row.last_seen_at, row.expires_at), (300, 6_000), "{database:?}");
    let amr = vec!["pwd".to_string(), "otp".to_string(), "mfa".to_string()];
    assert!(store.record_sso_session_factor("sa", &amr, 310, 6_100).await.unwrap());
    let row = store.sso_session("sa").await.unwrap().unwrap();
    assert_eq!((row.amr, row.factor_proven_at, row.expires_at), (amr.clone(), Some(310), 6_100), "{database:?}");
    assert!(!store.touch_sso_session("nope", 300, 6_000).await.unwrap(), "{database:?}: an unknown session is not touched");

    // Ended: not live any more, never touched again; listed no more.
    let ended = store.end_sso_session("sb", "admin", false, 400, &audit_event("session.end", "s1")).await.unwrap().expect("ended");
    assert_eq!((ended.session.ended_at, ended.session.end_reason.as_deref(), ended.session.expires_at), (Some(400), Some("admin"), 400), "{database:?}");
    assert!(store.end_sso_session("sb", "admin", false, 410, &audit_event("session.end", "s1")).await.unwrap().is_none(), "{database:?}: ended twice");
    assert!(store.end_sso_session("nope", "admin", false, 410, &audit_event("session.end", "s1")).await.unwrap().is_none());
    assert!(!store.touch_sso_session("sb", 500, 7_000).await.unwrap(), "{database:?}: an ended session was touched");
    assert!(!store.record_sso_session_factor("sb", &amr, 500, 7_000).await.unwrap());
    assert_eq!(store.sso_session("sb").await.unwrap().unwrap().expires_at, 400);
    let sids: Vec<String> = store.live_sso_sessions(Some("s1"), 450).await.unwrap().into_iter().map(|l| l.session.sid).collect();
    assert_eq!(sids, vec!["sa".to_string()], "{database:?}");
    assert_eq!(store.recent_audit(Some("s1"), 10).await.unwrap().len(), 1, "{database:?}: one audit event, with the one end");

    // Pruning takes what ended or expired before the cut-off, at most `limit` at a time, with
    // its clients; live sessions stay.
    assert_eq!(store.prune_sso_sessions(450, 1).await.unwrap(), 1, "{database:?}: the oldest first");
    assert_eq!(store.sso_session("sx").await.unwrap(), None, "{database:?}: expired at 150");
    assert_eq!(store.prune_sso_sessions(450, 100).await.unwrap(), 1, "{database:?}: then the one ended at 400");
    assert_eq!(store.sso_session("sb").await.unwrap(), None);
    assert_eq!(store.prune_sso_sessions(450, 100).await.unwrap(), 0);
    store.end_sso_session("so", "admin", false, 500, &audit_event("session.end", "s2")).await.unwrap().unwrap();
    assert_eq!(store.prune_sso_sessions(600, 100).await.unwrap(), 1);
    assert_eq!(store.live_sso_sessions(None, 600).await.unwrap().len(), 1, "{database:?}: only sa is left");
    // The pruned session's clients went with it: a session of the same id starts with none.
    store.insert_sso_session(&sso_session("so", "s2", 700, 9_000)).await.unwrap();
    assert!(store.live_sso_sessions(Some("s2"), 700).await.unwrap()[0].clients.is_empty(), "{database:?}");
}

/// A refresh token of family `family` issued in session `sid`.
fn token_in(hash: u8, family: &str, sid: &str) -> RefreshToken {
    RefreshToken { sid: Some(sid.into()), ..refresh_token(hash, family) }
}

async fn ending_an_sso_session_revokes_its_grants_once(database: Database) {
    let (_db, store) = store_for(database).await;
    registry_with_sessions(store.as_ref()).await;
    store.record_sso_session_client("sa", "c1", 200).await.unwrap();
    // Two families issued in sa (one rotated once), one in sb.
    store.start_refresh_family(&family("f1"), &token_in(1, "f1", "sa"), "jti-1", 9_000).await.unwrap();
    assert!(store.rotate_refresh_token(&[1; 32], 210, &token_in(2, "f1", "sa"), "jti-2", 9_000).await.unwrap());
    store.start_refresh_family(&family("f2"), &token_in(3, "f2", "sa"), "jti-3", 250).await.unwrap();
    store.start_refresh_family(&family("f3"), &token_in(4, "f3", "sb"), "jti-4", 9_000).await.unwrap();

    // Of concurrent ends, exactly one ends the session and revokes its grants.
    let barrier = Arc::new(Barrier::new(6));
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.end_sso_session("sa", "logout", true, 300, &audit_event("session.end", "s1")).await.unwrap()
            })
        })
        .collect();
    let mut ends = Vec::new();
    for c in callers {
        ends.extend(c.await.unwrap());
    }
    assert_eq!(ends.len(), 1, "{database:?}: {} callers ended one session", ends.len());
    let ended = ends.remove(0);
    assert_eq!(ended.clients, vec!["c1".to_string()], "{database:?}");
    assert_eq!(ended.revoked_families, vec!["f1".to_string(), "f2".to_string()], "{database:?}");
    assert_eq!(ended.access_tokens, vec![("jti-1".to_string(), 9_000), ("jti-2".to_string(), 9_000)], "{database:?}: the unexpired access tokens of its families");
    for hash in [1u8, 2, 3] {
        assert_eq!(store.refresh_token(&[hash; 32]).await.unwrap().unwrap().revoked_at, Some(300), "{database:?}: token {hash}");
    }
    assert!(!store.rotate_refresh_token(&[2; 32], 310, &token_in(5, "f1", "sa"), "jti-5", 9_000).await.unwrap(), "{database:?}: a revoked grant rotated");
    assert_eq!(store.refresh_token(&[4; 32]).await.unwrap().unwrap().revoked_at, None, "{database:?}: another session's grant");
    assert_eq!(store.recent_audit(Some("s1"), 10).await.unwrap().len(), 1, "{database:?}: one audit event for one end");

    // Without revoking grants (a re-authentication), the grants stay.
    let kept = store.end_sso_session("sb", "reauthenticated", false, 320, &audit_event("session.end", "s1")).await.unwrap().unwrap();
    assert!(kept.revoked_families.is_empty() && kept.access_tokens.is_empty(), "{database:?}");
    assert_eq!(store.refresh_token(&[4; 32]).await.unwrap().unwrap().revoked_at, None, "{database:?}");
}
