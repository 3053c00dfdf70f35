//! API-key usage accounting and retention: a check writes no audit row and no database row;
//! its use is counted per key per minute and flushed once the minute has closed (once, by one
//! node, with every node's checks in it); refusals are audited once per key, reason and minute;
//! what outlived its retention is pruned; the audit log exports as JSON lines.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sesame::admin::api_keys::NewApiKey;
use sesame::api_keys::{self, Rejection};
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::store::{ApiKey, ApiKeyUsage, AuditEvent, AuthMethod, Durable};

use crate::support::api_keys::{admin, spec};
use crate::support::harness::{Database, Need, Tests};
use crate::support::machine::add_machine;
use crate::support::{eventually, http, output_within, Backend, TestDatabase, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("checks_are_counted_per_minute_and_only_security_events_audited", checks_are_counted_per_minute_and_only_security_events_audited)
        .test_needing(&[Need::Postgres, Need::Redis], "two_nodes_count_into_one_row_per_key_and_minute", two_nodes_count_into_one_row_per_key_and_minute)
        .each_database("retention_prunes_old_events_ended_keys_and_old_usage", retention_prunes_old_events_ended_keys_and_old_usage)
        .each_backend("a_running_server_prunes_on_its_interval", a_running_server_prunes_on_its_interval)
        .each_database("audit_export_and_usage_from_the_cli", audit_export_and_usage_from_the_cli);
}

/// A manual clock 10 s into a minute.
fn clock_at_minute_start() -> Arc<ManualClock> {
    let now = SystemClock.now();
    Arc::new(ManualClock::new(now - now.rem_euclid(60) + 10))
}

fn fast_flush(c: &mut sesame::config::Config) {
    c.api_keys.usage_flush_interval = Duration::from_millis(100);
}

async fn usage_minutes(server: &TestServer, id: &str, since: i64) -> Vec<ApiKeyUsage> {
    admin(server).usage(id, since).await.unwrap().minutes
}

async fn checks_are_counted_per_minute_and_only_security_events_audited(backend: Backend) {
    let clock = clock_at_minute_start();
    let server = TestServer::start_with_clock(backend, clock.clone(), fast_flush).await;
    let start = clock.now();
    let issued = admin(&server).generate(&NewApiKey { cidrs: vec!["10.0.0.0/8".into()], rate_limit_per_minute: Some(5), ..spec("svc", "a") }).await.unwrap();
    let audited = || async { server.state.durable.recent_audit(Some(&issued.id), 1000).await.unwrap() };
    let before = audited().await.len();

    let inside = Some("10.1.2.3".parse().unwrap());
    let outside = Some("192.0.2.1".parse().unwrap());
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(api_keys::verify(&server.state, &issued.key, inside).await.unwrap().err());
    }
    for _ in 0..3 {
        outcomes.push(api_keys::verify(&server.state, &issued.key, outside).await.unwrap().err());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_none()).count(), 5, "{backend:?}: five within the limit");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Some(Rejection::RateLimited { .. }))).count(), 3);
    assert_eq!(outcomes.iter().filter(|o| o == &&Some(Rejection::AddressNotAllowed)).count(), 3);

    // Eleven checks: one row for the refusals (the first of the minute), one for the rate limit crossed.
    let events = audited().await;
    let new: Vec<&AuditEvent> = events[before..].iter().collect();
    let kinds: Vec<(&str, Option<&str>)> = new.iter().map(|e| (e.kind.as_str(), e.reason.as_deref())).collect();
    assert_eq!(kinds.len(), 2, "{backend:?}: security events only, not a row per check: {kinds:?}");
    assert!(kinds.contains(&("api_key.suspicious", Some("rate limit exceeded"))), "{kinds:?}");
    assert!(kinds.contains(&("api_key.refused", Some("address not allowed"))), "{kinds:?}");

    // The open minute is not flushed; once it has closed, it is, as one row.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(usage_minutes(&server, &issued.id, 0).await.is_empty(), "{backend:?}: an open minute was flushed");
    clock.advance(60);
    let minute = start - start.rem_euclid(60);
    let expected = vec![ApiKeyUsage { key_id: issued.id.clone(), minute, requests: 8, rate_limited: 3, denied: 3 }];
    eventually(Duration::from_secs(10), "the closed minute flushed", || async {
        let rows = usage_minutes(&server, &issued.id, 0).await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(usage_minutes(&server, &issued.id, 0).await, expected, "{backend:?}");

    // The next minute is a row of its own; the first is not written again.
    assert!(api_keys::verify(&server.state, &issued.key, inside).await.unwrap().is_ok());
    clock.advance(60);
    eventually(Duration::from_secs(10), "the second minute flushed", || async { (usage_minutes(&server, &issued.id, 0).await.len() == 2).then_some(()) }).await;
    let usage = admin(&server).usage(&issued.id, 0).await.unwrap();
    assert_eq!((usage.requests, usage.rate_limited, usage.denied), (9, 3, 3), "{backend:?}: totals");
    let stored = server.state.durable.api_key(&issued.id).await.unwrap().unwrap();
    assert_eq!(stored.last_used_from.as_deref(), Some("10.1.2.3"));
    assert_eq!(audited().await.len(), before + 2, "{backend:?}: a successful check is never audited");

    // The admin API shows the same.
    let root = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let token: Value = http().post(server.url("/token")).basic_auth(&root.id, root.secret.as_ref()).form(&[("grant_type", "client_credentials")]).send().await.unwrap().json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let res = http().get(server.url(&format!("/admin/api-keys/{}/usage?since=0", issued.id))).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["requests"].clone(), body["minutes"][0]["rate_limited"].clone()), (json!(9), json!(3)), "{body}");
    let res = http().get(server.url("/admin/api-keys/nope/usage")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = http().get(server.url(&format!("/admin/api-keys/{}/usage", issued.id))).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

async fn two_nodes_count_into_one_row_per_key_and_minute() {
    let clock = clock_at_minute_start();
    let a = TestServer::start_with_clock(Backend::External, clock.clone(), fast_flush).await;
    let b = TestServer::start_node((*a.state.config).clone(), clock.clone(), None, Some(a.redis_prefix.clone())).await;
    let start = clock.now();
    let issued = admin(&a).generate(&spec("shared", "a")).await.unwrap();
    for (node, n) in [(&a, 3), (&b, 4)] {
        for _ in 0..n {
            assert!(api_keys::verify(&node.state, &issued.key, None).await.unwrap().is_ok());
        }
    }
    clock.advance(60);
    eventually(Duration::from_secs(10), "the minute flushed", || async { (!usage_minutes(&a, &issued.id, 0).await.is_empty()).then_some(()) }).await;
    // Both nodes' flushers have had several rounds since.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let minute = start - start.rem_euclid(60);
    assert_eq!(usage_minutes(&b, &issued.id, 0).await, vec![ApiKeyUsage { key_id: issued.id.clone(), minute, requests: 7, rate_limited: 0, denied: 0 }]);
}

fn key(id: &str, expires_at: i64, revoked_at: Option<i64>, grace_until: Option<i64>) -> ApiKey {
    ApiKey {
        id: id.into(),
        name: id.into(),
        env: "prod".into(),
        key_hash: id.as_bytes().to_vec(),
        prefix: "ses_prod_x".into(),
        scopes: vec![],
        created_at: 0,
        expires_at,
        cidrs: vec![],
        rate_limit_per_minute: 10,
        metadata: Value::Null,
        last_used_at: None,
        last_used_from: None,
        revoked_at,
        grace_until,
        replaced_by: None,
    }
}

fn event(at: i64, subject: &str) -> AuditEvent {
    AuditEvent { id: 0, at, kind: "test.event".into(), subject: subject.into(), caller: None, result: "ok".into(), reason: None, details: json!({}) }
}

fn usage(key_id: &str, minute: i64) -> ApiKeyUsage {
    ApiKeyUsage { key_id: key_id.into(), minute, requests: 1, rate_limited: 0, denied: 0 }
}

async fn retention_prunes_old_events_ended_keys_and_old_usage(database: Database) {
    let db = TestDatabase::of(database).await;
    let store = db.open().await;
    let now = SystemClock.now();
    let day = 86_400;
    for at in [now - 400 * day, now - 366 * day, now - 10 * day, now] {
        store.append_audit(&event(at, "e")).await.unwrap();
    }
    let keys = [
        key("revoked-long-ago", now + 300 * day, Some(now - 100 * day), None),
        key("expired-long-ago", now - 100 * day, None, None),
        key("rotated-out-long-ago", now + 300 * day, None, Some(now - 100 * day)),
        key("revoked-lately", now + 300 * day, Some(now - 10 * day), None),
        key("live", now + 300 * day, None, None),
    ];
    for k in &keys {
        store.insert_api_key(k, &event(now, &k.id)).await.unwrap();
    }
    let minute = |days_ago: i64| (now - days_ago * day) / 60 * 60;
    store.record_api_key_usage(&[usage("revoked-long-ago", minute(100)), usage("live", minute(100)), usage("live", minute(1)), usage("revoked-lately", minute(10))]).await.unwrap();

    let mut config = sesame::config::Config::default();
    config.audit.retention = Duration::from_secs(365 * day as u64);
    config.api_keys.retention = Duration::from_secs(90 * day as u64);
    let pruned = sesame::retention::prune(store.as_ref(), &config, now).await.unwrap();
    assert_eq!((pruned.audit_events, pruned.api_keys), (2, 3), "{database:?}: {pruned:?}");
    let left: Vec<i64> = store.audit_page(i64::MIN, i64::MAX, 0, 100).await.unwrap().iter().filter(|e| e.subject == "e").map(|e| e.at).collect();
    assert_eq!(left, [now - 10 * day, now], "{database:?}: events within a year stay");
    let mut kept: Vec<String> = store.api_keys().await.unwrap().into_iter().map(|k| k.id).collect();
    kept.sort();
    assert_eq!(kept, ["live", "revoked-lately"], "{database:?}: keys that ended within 90 days, and live ones, stay");
    assert!(store.api_key_usage("revoked-long-ago", 0).await.unwrap().is_empty(), "{database:?}: a pruned key's usage goes with it");
    assert_eq!(store.api_key_usage("live", 0).await.unwrap(), [usage("live", minute(1))], "{database:?}: old usage of a live key goes");
    assert_eq!(store.api_key_usage("revoked-lately", 0).await.unwrap().len(), 1);

    // Refresh-token families go a day after they expired or were revoked, their tokens with them.
    let ended_families = [("expired-2d", now - 2 * day, false), ("revoked-2d", now + 30 * day, true), ("expired-1h", now - 3600, false), ("live", now + 30 * day, false)];
    for (i, (id, expires, revoke)) in ended_families.iter().enumerate() {
        let family = sesame::store::RefreshFamily { absolute_expires_at: *expires, ..crate::stores::family(id) };
        store.start_refresh_family(&family, &crate::stores::refresh_token(i as u8 + 1, id), &format!("jti-{id}"), now + 300).await.unwrap();
        if *revoke {
            store.revoke_refresh_family(id, now - 2 * day).await.unwrap();
        }
    }
    let pruned = sesame::retention::prune(store.as_ref(), &config, now).await.unwrap();
    assert_eq!(pruned.refresh_families, 2, "{database:?}: {pruned:?}");
    for (i, (id, _, _)) in ended_families.iter().enumerate() {
        let kept = store.refresh_token(&[i as u8 + 1; 32]).await.unwrap().is_some();
        assert_eq!(kept, !id.ends_with("2d"), "{database:?}: the token of family {id}");
    }

    // Zero keeps forever.
    config.audit.retention = Duration::ZERO;
    config.api_keys.retention = Duration::ZERO;
    let pruned = sesame::retention::prune(store.as_ref(), &config, now + 1000 * day).await.unwrap();
    assert_eq!((pruned.audit_events, pruned.api_keys, pruned.api_key_usage), (0, 0, 0), "{database:?}");
}

async fn a_running_server_prunes_on_its_interval(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.audit.retention = Duration::from_secs(86_400);
        c.audit.prune_interval = Duration::from_millis(200);
    })
    .await;
    let now = server.state.now();
    server.state.durable.append_audit(&event(now - 2 * 86_400, "old")).await.unwrap();
    server.state.durable.append_audit(&event(now, "new")).await.unwrap();
    eventually(Duration::from_secs(10), "the old event pruned", || async {
        server.state.durable.recent_audit(Some("old"), 10).await.unwrap().is_empty().then_some(())
    })
    .await;
    assert_eq!(server.state.durable.recent_audit(Some("new"), 10).await.unwrap().len(), 1, "{backend:?}");
}

fn sesame_cli(db: &TestDatabase, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"));
    cmd.args(args).env("SESAME_DATABASE_URL", &db.url).env_remove("SESAME_REDIS_URL").env_remove("SESAME_CONFIG");
    let dir = tempfile::tempdir().unwrap();
    cmd.current_dir(dir.path());
    output_within(cmd, None, Duration::from_secs(60))
}

async fn audit_export_and_usage_from_the_cli(database: Database) {
    let db = TestDatabase::of(database).await;
    let store: Arc<dyn Durable> = db.open().await;
    // More than one page of the export (1,000 events a page).
    let base = 1_700_000_000;
    for i in 0..1_250 {
        store.append_audit(&event(base + i, &format!("s{i}"))).await.unwrap();
    }
    let lines = |out: std::process::Output| -> Vec<Value> {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
    };
    let all = lines(sesame_cli(&db, &["audit", "export", "--since", &base.to_string()]));
    assert_eq!(all.len(), 1_250, "{database:?}: every event, across pages");
    assert!(all.windows(2).all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()), "oldest first, each once");
    assert_eq!(all[0]["time"], "2023-11-14T22:13:20Z");
    let some = lines(sesame_cli(&db, &["audit", "export", "--since", "2023-11-14T22:30:00Z", "--until", &(base + 1_010).to_string()]));
    assert_eq!(some.first().map(|e| e["at"].clone()), Some(json!(base + 1_000)), "{database:?}");
    assert_eq!(some.len(), 10, "{database:?}: [since, until)");
    let bad = sesame_cli(&db, &["audit", "export", "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2), "bad usage");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a time"));

    store.insert_api_key(&key("k1", i64::MAX, None, None), &event(base, "k1")).await.unwrap();
    store.record_api_key_usage(&[ApiKeyUsage { key_id: "k1".into(), minute: base / 60 * 60, requests: 12, rate_limited: 2, denied: 1 }]).await.unwrap();
    let out = sesame_cli(&db, &["apikey", "usage", "k1", "--since", "0", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let usage: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((usage["requests"].clone(), usage["rate_limited"].clone(), usage["denied"].clone()), (json!(12), json!(2), json!(1)), "{usage}");
    let missing = sesame_cli(&db, &["apikey", "usage", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
}
