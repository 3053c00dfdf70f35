//! A rolling restart fails no request: three `sesame serve` nodes behind nginx (round robin, no
//! health checks: open-source nginx has none) carry a mixed load, and each node in turn gets
//! SIGTERM, drains (`/readyz` 503, every answer `Connection: close`), stops accepting, exits 0, and
//! is started again on the same port; the next node is stopped only once this one is ready and
//! serves through nginx again. Every request of the load must get its expected success status.
//!
//! nginx learns that a node is gone from the refused connections once its listener is closed,
//! and sends those requests to another node (they were never sent, POSTs included).
//!
//! `SESAME_ROLLING_RESTART_BINARY` (another build of `sesame`, a release build say) and
//! `SESAME_ROLLING_RESTART_PHASE` (how long the load runs before, between and after the restarts;
//! default 1s) make the same test the benchmark's longer run (`bench/rolling_restart.sh`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::cluster::{machine, web_app, Cluster, NEEDS};
use crate::support::harness::Tests;
use crate::support::sesame_process::SIGTERM;
use crate::support::sso::*;
use crate::support::{eventually, http, Site};

pub fn tests(t: &mut Tests) {
    t.test_needing(NEEDS, "rolling_restart_behind_nginx_fails_no_request", rolling_restart_behind_nginx_fails_no_request);
}

const NODES: usize = 3;
/// Short for CI; nginx needs no time to notice a draining node (it learns from refused
/// connections after the drain), so the drain only has to outlast nginx's idle upstream
/// connections (`UPSTREAM_KEEPALIVE_TIMEOUT`).
const DRAIN: &str = "1s";
const GRACE: &str = "10s";
/// The longest a node may take from SIGTERM to its exit: the drain, the grace, and a margin.
const STOP_LIMIT: Duration = Duration::from_secs(30);
const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// Phases: before the restarts; for each node, its restart (from its SIGTERM until its new
/// process serves through nginx) and `phase` with every node up (the last of these: after).
const PHASES: usize = 2 * NODES + 1;

#[derive(Clone, Copy, Debug)]
enum Kind {
    ClientCredentials,
    Refresh,
    Introspect,
    Metadata,
    ApiKey,
}

const KINDS: [Kind; 5] = [Kind::ClientCredentials, Kind::Refresh, Kind::Introspect, Kind::Metadata, Kind::ApiKey];

/// The load's answers, per phase.
#[derive(Default)]
struct Tally {
    phase: AtomicUsize,
    served: [[AtomicU64; KINDS.len()]; PHASES],
    failed: [AtomicU64; PHASES],
    /// The first failures, described.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, kind: Kind, outcome: Result<(), String>) {
        let phase = self.phase.load(Ordering::Acquire);
        match outcome {
            Ok(()) => self.served[phase][kind as usize].fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                let mut failures = self.failures.lock().unwrap();
                if failures.len() < 20 {
                    failures.push(format!("{kind:?} in phase {phase}: {e}"));
                }
                self.failed[phase].fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    fn served_in(&self, phase: usize) -> u64 {
        self.served[phase].iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

/// What the load needs: who it is and what it presents.
struct Load {
    base: String,
    batch: TestClient,
    portal: TestClient,
    reports: TestClient,
    api_key: String,
    access_token: String,
}

/// One request: Ok if it got its expected status and body, else what it got.
async fn expect(request: reqwest::RequestBuilder, status: u16, check: impl FnOnce(&Value) -> bool) -> Result<Value, String> {
    let res = request.timeout(REQUEST_LIMIT).send().await.map_err(|e| format!("no answer: {e:?}"))?;
    let got = res.status().as_u16();
    let body = res.bytes().await.map_err(|e| format!("{got}, body cut off: {e}"))?;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if got != status || !check(&value) {
        return Err(format!("{got} {}", String::from_utf8_lossy(&body)));
    }
    Ok(value)
}

/// One task of the load, sending `kind` requests one after the other until `stop`.
async fn run(kind: Kind, load: Arc<Load>, mut refresh_token: String, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let client = http();
    let url = |path: &str| format!("{}{path}", load.base);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let outcome = match kind {
            Kind::ClientCredentials => {
                let request = client.post(url("/token")).basic_auth(&load.batch.id, load.batch.secret.as_ref()).form(&[("grant_type", "client_credentials")]);
                expect(request, 200, |v| v["access_token"].is_string()).await.map(drop)
            }
            Kind::Refresh => {
                let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
                let request = client.post(url("/token")).basic_auth(&load.portal.id, load.portal.secret.as_ref()).form(&form);
                expect(request, 200, |v| v["refresh_token"].is_string()).await.map(|v| refresh_token = v["refresh_token"].as_str().unwrap().to_string())
            }
            Kind::Introspect => {
                let request = client.post(url("/introspect")).basic_auth(&load.reports.id, load.reports.secret.as_ref()).form(&[("token", load.access_token.as_str())]);
                expect(request, 200, |v| v["active"] == true).await.map(drop)
            }
            Kind::Metadata => {
                let path = if n % 2 == 0 { "/jwks.json" } else { "/.well-known/openid-configuration" };
                expect(client.get(url(path)), 200, |v| v.is_object()).await.map(drop)
            }
            Kind::ApiKey => {
                let request = client.post(url("/introspect")).basic_auth(&load.reports.id, load.reports.secret.as_ref()).form(&[("token", load.api_key.as_str())]);
                expect(request, 200, |v| v["active"] == true && v["token_type"] == "api_key").await.map(drop)
            }
        };
        tally.record(kind, outcome);
    }
}

fn settings() -> (PathBuf, Duration) {
    let binary = std::env::var_os("SESAME_ROLLING_RESTART_BINARY").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sesame")));
    let phase = std::env::var("SESAME_ROLLING_RESTART_PHASE").ok().map(|s| humantime::parse_duration(&s).expect("SESAME_ROLLING_RESTART_PHASE: a duration")).unwrap_or(Duration::from_secs(1));
    (binary, phase)
}

/// Clients, a user with two refresh token chains, an API key and an access token.
async fn prepare(cluster: &Cluster) -> (Load, Vec<String>) {
    cluster.add_user("alice").await;
    let portal = cluster.add_client(&web_app("Portal")).await;
    let batch = cluster.add_client(&machine("Batch", "reports:read")).await;
    let reports = cluster.add_client(&machine("Reports", "reports:read")).await;
    let ops = cluster.add_client(&machine("Ops", "sesame:admin")).await;

    let browser = Browser::new();
    let mut chains = Vec::new();
    for n in 0..2 {
        let p = pkce();
        let authorize = authorize_url(cluster, &portal, &p, &[("scope", "openid offline_access")]);
        let callback = if n == 0 { sign_in(&browser, cluster, &authorize, "alice").await } else { location(&browser.get(&authorize).await) };
        let res = redeem(cluster, &portal, &query_param(&callback, "code").expect("a code"), &p.verifier).await;
        assert_eq!(res.status(), 200);
        chains.push(res.json::<Value>().await.unwrap()["refresh_token"].as_str().expect("a refresh token").to_string());
    }
    let grant = [("grant_type", "client_credentials")];
    let admin: Value = post_as(cluster, &ops, "/token", &grant).await.json().await.unwrap();
    let access: Value = post_as(cluster, &batch, "/token", &grant).await.json().await.unwrap();
    // A limit the load cannot reach: a 429 would be a failure of the test, not of the restart.
    let spec = json!({"name": "load", "scope": "reports:read", "rate_limit_per_minute": 100_000_000});
    let res = http().post(cluster.url("/admin/api-keys")).bearer_auth(admin["access_token"].as_str().unwrap()).json(&spec).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let api_key = res.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_string();
    let load = Load { base: cluster.base().to_string(), batch, portal, reports, api_key, access_token: access["access_token"].as_str().unwrap().to_string() };
    (load, chains)
}

async fn rolling_restart_behind_nginx_fails_no_request() {
    let (binary, phase) = settings();
    let env = [("SESAME_SHUTDOWN__DRAIN", DRAIN.to_string()), ("SESAME_SHUTDOWN__GRACE", GRACE.to_string())];
    let mut cluster = Cluster::start(NODES, &binary, &env).await;
    let (load, chains) = prepare(&cluster).await;
    let load = Arc::new(load);

    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let mut tasks = Vec::new();
    let mut chains = chains.into_iter();
    for kind in [Kind::ClientCredentials, Kind::ClientCredentials, Kind::Refresh, Kind::Refresh, Kind::Introspect, Kind::Metadata, Kind::ApiKey] {
        let chain = if matches!(kind, Kind::Refresh) { chains.next().unwrap() } else { String::new() };
        tasks.push(tokio::spawn(run(kind, load.clone(), chain, tally.clone(), stop.clone())));
    }

    // When each phase began; the last mark is the end of the load.
    let mut marks = vec![Instant::now()];
    tokio::time::sleep(phase).await;
    for i in 0..NODES {
        marks.push(Instant::now());
        tally.phase.store(2 * i + 1, Ordering::Release);
        let before = cluster.nodes[i].process().id();
        let status = cluster.stop(i, SIGTERM, STOP_LIMIT).await;
        let log = cluster.nodes[i].earlier_logs.last().unwrap().clone();
        assert_eq!(status.code(), Some(0), "node {i} after SIGTERM: {log}");
        assert!(log.contains("draining for") && log.lines().any(|l| l.ends_with(": stopped")), "node {i} did not drain and stop: {log}");
        cluster.restart(i).await;
        assert_ne!(cluster.nodes[i].process().id(), before, "node {i} is a new process");
        // Back in nginx's rotation (it skips a node for `fail_timeout` after a refusal): the new
        // process answers some of the load before the next node goes.
        eventually(Duration::from_secs(30), &format!("node {i} serving through nginx again"), || async {
            (cluster.requests_served(i).await > 0).then_some(())
        })
        .await;
        marks.push(Instant::now());
        tally.phase.store(2 * i + 2, Ordering::Release);
        tokio::time::sleep(phase).await;
    }
    marks.push(Instant::now());
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(REQUEST_LIMIT + Duration::from_secs(5), task).await.expect("the load stops").unwrap();
    }

    let names: Vec<String> = (0..PHASES)
        .map(|p| match p {
            0 => "before".to_string(),
            p if p == PHASES - 1 => "after".to_string(),
            p if p % 2 == 1 => format!("restart of node {}", p / 2),
            _ => "between".to_string(),
        })
        .collect();
    let figures = |what: &str, phases: &[usize]| {
        let served: u64 = phases.iter().map(|p| tally.served_in(*p)).sum();
        let failed: u64 = phases.iter().map(|p| tally.failed[*p].load(Ordering::Relaxed)).sum();
        let length: f64 = phases.iter().map(|p| (marks[p + 1] - marks[*p]).as_secs_f64()).sum();
        format!("{what}: {served} served, {failed} failed in {length:.1} s ({:.0}/s)", served as f64 / length)
    };
    let summary: Vec<String> = (0..PHASES).map(|p| figures(&names[p], &[p])).collect();
    let restarts: Vec<usize> = (0..NODES).map(|i| 2 * i + 1).collect();
    let during = figures("during the restarts", &restarts);
    let per_kind: Vec<String> = KINDS.iter().map(|k| format!("{k:?} {}", (0..PHASES).map(|p| tally.served[p][*k as usize].load(Ordering::Relaxed)).sum::<u64>())).collect();
    // Requests nginx passed to another node after a refused connection (`a, b` upstreams).
    let retried = cluster.nginx.access_log().lines().filter(|l| l.split(' ').nth(1).is_some_and(|a| a.ends_with(','))).count();
    let failed: u64 = tally.failed.iter().map(|n| n.load(Ordering::Relaxed)).sum();
    let report = format!(
        "rolling restart of {NODES} nodes (drain {DRAIN}): {}; {during}; by kind: {}; {retried} passed on by nginx to another node",
        summary.join("; "),
        per_kind.join(", ")
    );
    println!("{report}");
    let errors: Vec<String> = cluster.nginx.error_log().lines().filter(|l| l.contains("[error]")).take(10).map(str::to_string).collect();
    assert_eq!(failed, 0, "{report}\nfirst failures: {:#?}\nnginx errors: {errors:#?}", tally.failures.lock().unwrap());
    for p in 0..PHASES {
        assert!(tally.served_in(p) > 0, "the load stalled during {}: {report}", names[p]);
    }
}
