//! A stop asked for drains: on SIGTERM `/readyz` turns 503 at once, every request (new
//! connections too) is still served for `shutdown.drain`, then the node stops accepting and
//! exits 0. No request fails before it stops accepting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, SystemClock};

use crate::support::harness::Tests;
use crate::support::sesame_process::{SesameProcess, SIGINT, SIGTERM};
use crate::support::{base64_kek, http, Backend, Site, TestDatabase};

pub fn tests(t: &mut Tests) {
    t.test("sigterm_drains_then_stops_accepting_and_exits", sigterm_drains_then_stops_accepting_and_exits)
        .test("a_second_signal_cuts_the_drain_short", a_second_signal_cuts_the_drain_short);
}

const DRAIN: Duration = Duration::from_secs(2);
/// Longest from the signal to `/readyz` answering 503.
const READYZ_LIMIT: Duration = Duration::from_millis(200);
/// Longest from the end of the drain to the exit (nothing slow is in flight).
const EXIT_MARGIN: Duration = Duration::from_millis(1500);
const LOAD_TASKS: usize = 4;

struct Node {
    process: SesameProcess,
    machine: (String, String),
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

/// `sesame serve` on SQLite and the in-process store, with a client_credentials client.
async fn start(drain: &str) -> Node {
    let db = TestDatabase::new(Backend::Embedded).await;
    let mut spec = NewClient::new("Batch");
    spec.grant_types = vec!["client_credentials".into()];
    spec.scope = Some("reports:read".into());
    let created = clients::add(db.open().await.as_ref(), &spec, "test", SystemClock.now()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SESAME_DATABASE_URL", db.url.clone()),
        ("SESAME_KEK", base64_kek()),
        ("SESAME_SHUTDOWN__DRAIN", drain.to_string()),
        ("SESAME_SHUTDOWN__GRACE", "5s".to_string()),
    ];
    let process = SesameProcess::serve(dir.path(), &env).await;
    Node { process, machine: (created.client.id, created.client_secret.unwrap()), _db: db, _dir: dir }
}

/// One request of the load: when it was sent, and its status, or when and why it got none.
struct Sent {
    at: Instant,
    outcome: Result<u16, (Instant, String)>,
}

/// Discovery and client_credentials requests, alternately, every 20 ms, until `stop`.
async fn load(base: String, machine: (String, String), stop: Arc<AtomicBool>) -> Vec<Sent> {
    let client = http();
    let mut sent = Vec::new();
    for n in 0usize.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let at = Instant::now();
        let request = if n % 2 == 0 {
            client.get(format!("{base}/.well-known/openid-configuration"))
        } else {
            client.post(format!("{base}/token")).basic_auth(&machine.0, Some(&machine.1)).form(&[("grant_type", "client_credentials")])
        };
        let outcome = match request.timeout(Duration::from_secs(5)).send().await {
            // The whole body, or it was not answered.
            Ok(res) => {
                let status = res.status().as_u16();
                res.bytes().await.map(|_| status).map_err(|e| (Instant::now(), format!("body: {e}")))
            }
            Err(e) => Err((Instant::now(), if e.is_connect() { "refused".into() } else { format!("{e:?}") })),
        };
        sent.push(Sent { at, outcome });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent
}

async fn readyz(node: &SesameProcess) -> Option<(u16, Value)> {
    let res = http().get(node.url("/readyz")).timeout(Duration::from_secs(5)).send().await.ok()?;
    Some((res.status().as_u16(), res.json().await.ok()?))
}

/// When a TCP connection is first refused, polling every 10 ms.
async fn first_refusal(addr: String) -> Instant {
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            return Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn sigterm_drains_then_stops_accepting_and_exits() {
    let mut node = start(&humantime::format_duration(DRAIN).to_string()).await;
    let (status, body) = readyz(&node.process).await.expect("readyz answers");
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = (0..LOAD_TASKS).map(|_| tokio::spawn(load(node.process.base.clone(), node.machine.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let refusal = tokio::spawn(first_refusal(node.process.base.trim_start_matches("http://").to_string()));
    let signalled = Instant::now();
    node.process.signal(SIGTERM);
    let draining_after = loop {
        if let Some((503, body)) = readyz(&node.process).await {
            assert_eq!((body["status"].as_str(), body["database"].as_str(), body["ephemeral"].as_str()), (Some("draining"), Some("ok"), Some("ok")), "{body}");
            break signalled.elapsed();
        }
        assert!(signalled.elapsed() < READYZ_LIMIT, "/readyz did not turn 503 within {READYZ_LIMIT:?} of SIGTERM");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(draining_after <= READYZ_LIMIT, "/readyz turned 503 only {draining_after:?} after SIGTERM");

    // Halfway through the drain: a new client on a new connection is served, and told to go.
    tokio::time::sleep(DRAIN / 2 - draining_after).await;
    let res = http().get(node.process.url("/healthz")).timeout(Duration::from_secs(5)).send().await.expect("a new connection during the drain is served");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"), "answers during the drain close their connection");

    let status = node.process.exit_within(DRAIN + EXIT_MARGIN).await;
    let exited_after = signalled.elapsed();
    let log = node.process.log();
    let status = status.unwrap_or_else(|| panic!("still running {exited_after:?} after SIGTERM: {log}"));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(exited_after >= DRAIN, "exited {exited_after:?} after SIGTERM, before the drain of {DRAIN:?} was over");
    let refused_after = tokio::time::timeout(Duration::from_secs(1), refusal).await.expect("refused after the exit").unwrap() - signalled;
    assert!(refused_after >= DRAIN, "a connection was refused {refused_after:?} after SIGTERM, within the drain");
    assert!(log.contains("draining for 2s") && log.contains("stopped accepting; "), "{log}");
    assert!(log.lines().any(|line| line.ends_with(": stopped")), "no `stopped` at the end: {log}");

    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for task in loads {
        sent.extend(task.await.unwrap());
    }
    // The node heard the signal after `signalled`, so it stopped accepting no earlier than this.
    let stopped_accepting = signalled + DRAIN;
    let mut served_in_drain = 0;
    let mut unanswered_after = 0;
    for request in &sent {
        let offset = request.at.saturating_duration_since(signalled);
        match &request.outcome {
            Ok(200) if request.at >= signalled => served_in_drain += 1,
            Ok(200) => {}
            Ok(status) => panic!("a request sent {offset:?} after SIGTERM got {status}"),
            // Once the node stops accepting, its port refuses connections: such a request fails,
            // but not before then. (Connections the kernel had completed are still served:
            // `sesame::connections`.)
            Err((failed, _)) if *failed >= stopped_accepting => unanswered_after += 1,
            Err((failed, e)) => panic!("a request sent {offset:?} after SIGTERM failed {:?} after it, during the drain: {e}", failed.saturating_duration_since(signalled)),
        }
    }
    assert!(served_in_drain >= 50, "only {served_in_drain} requests were served during the drain");
    println!(
        "readyz 503 {} ms after SIGTERM; {served_in_drain} requests served during the {DRAIN:?} drain; connections refused from {} ms, \
         exit 0 at {} ms; {unanswered_after} requests unanswered once it stopped accepting",
        draining_after.as_millis(),
        refused_after.as_millis(),
        exited_after.as_millis()
    );
}

async fn a_second_signal_cuts_the_drain_short() {
    let mut node = start("60s").await;
    node.process.signal(SIGTERM);
    let signalled = Instant::now();
    while !matches!(readyz(&node.process).await, Some((503, _))) {
        assert!(signalled.elapsed() < Duration::from_secs(5), "/readyz did not turn 503 after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.process.signal(SIGINT);
    let status = node.process.exit_within(Duration::from_secs(5)).await;
    let log = node.process.log();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "a second signal did not end a 60 s drain within 5 s: {log}");
    assert!(log.contains("drain cut short"), "{log}");
}
