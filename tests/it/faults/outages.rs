//! Store outages under load: a private Redis killed and restarted, PostgreSQL behind a proxy
//! that closes every connection or blackholes them, and PostgreSQL's sessions ended as by a restart. While a store is down every request that
//! needs it is answered within a second (503 `temporarily_unavailable`, the HTML error page,
//! the admin API's JSON), what needs neither store keeps answering, `/readyz` names the store;
//! within two seconds of its return everything works again, with no restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sesame::store::AuthMethod;

use crate::support::harness::{Need, Tests};
use crate::support::machine::{add_machine, Machine};
use crate::support::private_redis::PrivateRedis;
use crate::support::proxy::{Fault, FaultProxy};
use crate::support::sso::{add_client, authorize_url, pkce};
use crate::support::{database_url, http, redis_url, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test_needing(&[Need::Postgres, Need::RedisServer], "a_redis_outage_under_load_is_answered_fast_and_recovers_alone", a_redis_outage_under_load_is_answered_fast_and_recovers_alone)
        .test_needing(&[Need::Postgres, Need::Redis], "a_blackholed_redis_under_load_is_answered_fast_and_recovers_alone", a_blackholed_redis_under_load_is_answered_fast_and_recovers_alone)
        .test_needing(&[Need::Postgres, Need::Redis], "a_database_closed_blackholed_or_restarted_under_load_is_answered_fast_and_recovers_alone", a_database_closed_blackholed_or_restarted_under_load_is_answered_fast_and_recovers_alone);
}

/// What the fault tests promise: an answer within this, outage or not.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// ... and everything working again within this of the store's return.
const RECOVER_WITHIN: Duration = Duration::from_secs(2);
/// The store budget the servers run with here (750 ms by default): the headroom up to
/// `ANSWER_WITHIN` absorbs a busy test machine.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
struct Sample {
    what: &'static str,
    sent: Instant,
    took: Duration,
    status: u16,
    /// The `id` of what a 201 created: a write the server acknowledged.
    created: Option<String>,
}

/// Requests sent in a loop by a few workers until stopped; every answer recorded.
struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

type MakeRequest = Arc<dyn Fn() -> (&'static str, reqwest::RequestBuilder) + Send + Sync>;

impl Load {
    fn start(workers: usize, make: MakeRequest) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers = (0..workers)
            .map(|_| {
                let (samples, stop, make) = (samples.clone(), stop.clone(), make.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (what, request) = make();
                        let sent = Instant::now();
                        // A reset or a hang is a failure as much as a 500: the status says which.
                        let (status, created) = match request.timeout(Duration::from_secs(5)).send().await {
                            Ok(res) if res.status() == 201 => (201, res.json::<Value>().await.ok().and_then(|v| v["id"].as_str().map(str::to_string))),
                            Ok(res) => (res.status().as_u16(), None),
                            Err(e) if e.is_timeout() => (0, None),
                            Err(_) => (1, None),
                        };
                        samples.lock().unwrap().push(Sample { what, sent, took: sent.elapsed(), status, created });
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Self { samples, stop, workers }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in self.workers {
            let _ = w.await;
        }
        Arc::try_unwrap(self.samples).unwrap().into_inner().unwrap()
    }
}

/// Checks the samples of one outage: before `down` all successes; from `down` until `back`
/// successes or the given statuses, each within `ANSWER_WITHIN`; from `back + RECOVER_WITHIN`
/// all successes again.
/// Returns the slowest answer during the outage and when the first success after it came.
fn judge(samples: &[Sample], down: Instant, back: Instant, during: &[u16], label: &str) -> (Duration, Duration) {
    // A sign-in that is stored and sent on to the login page (303) is as good as a 200.
    let ok = |status: u16| matches!(status, 200 | 201 | 303);
    let mut slowest = Duration::ZERO;
    let mut recovered: Option<Instant> = None;
    for s in samples {
        assert!(s.took < ANSWER_WITHIN, "{label}: {} took {:?} (status {})", s.what, s.took, s.status);
        if s.sent + s.took < down {
            assert!(ok(s.status), "{label}: {} answered {} before the fault", s.what, s.status);
        } else if s.sent < back {
            assert!(ok(s.status) || during.contains(&s.status), "{label}: {} answered {} during the outage (expected success or one of {during:?})", s.what, s.status);
            slowest = slowest.max(s.took);
        } else if s.sent > back + RECOVER_WITHIN {
            assert!(ok(s.status), "{label}: {} answered {} {:?} after the store came back", s.what, s.status, s.sent - back);
        } else if ok(s.status) && recovered.is_none() && s.what != "jwks" {
            // The JWKS needs no store: recovery is when a request that needs one succeeds.
            recovered = Some(s.sent + s.took);
        } else {
            assert!(ok(s.status) || during.contains(&s.status), "{label}: {} answered {} while recovering", s.what, s.status);
        }
    }
    let recovered = recovered.map_or(RECOVER_WITHIN, |at| at.saturating_duration_since(back));
    (slowest, recovered)
}

async fn token(server: &TestServer, m: &Machine) -> String {
    let res = http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

async fn readyz(server: &TestServer) -> (u16, Value) {
    let started = Instant::now();
    let res = http().get(server.url("/readyz")).send().await.unwrap();
    assert!(started.elapsed() < ANSWER_WITHIN, "/readyz took {:?}", started.elapsed());
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn a_redis_outage_under_load_is_answered_fast_and_recovers_alone() {
    let (redis, port) = PrivateRedis::spawn().await;
    let server = TestServer::start_with(Backend::External, |c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        c.store_timeout = STORE_TIMEOUT;
    })
    .await;
    let m = add_machine(&server, "Reports", "reports:read", AuthMethod::ClientSecretBasic).await;
    let app = add_client(&server, "App", false, false).await;
    let access = token(&server, &m).await;
    let revoked = token(&server, &m).await;
    let res = http().post(server.url("/revoke")).basic_auth(&m.id, m.secret.as_ref()).form(&[("token", revoked.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let authorize = authorize_url(&server, &app, &pkce(), &[]);
    let base = server.base.clone();
    let (id, secret) = (m.id.clone(), m.secret.clone());
    // Introspection and the authorization endpoint need Redis (deny list, pending requests);
    // the JWKS needs neither store.
    let make: MakeRequest = Arc::new(move || {
        let n = rand::random::<u8>() % 3;
        match n {
            0 => ("introspect", http().post(format!("{base}/introspect")).basic_auth(&id, secret.as_ref()).form(&[("token", access.as_str())])),
            1 => ("authorize", http().get(&authorize)),
            _ => ("jwks", http().get(format!("{base}/jwks.json"))),
        }
    });
    let load = Load::start(4, make);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let down = Instant::now();
    drop(redis);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = readyz(&server).await;
    assert_eq!((status, body["ephemeral"].as_str(), body["database"].as_str()), (503, Some("unreachable"), Some("ok")), "{body}");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let redis = PrivateRedis::respawn(port).await;
    let back = Instant::now();
    tokio::time::sleep(RECOVER_WITHIN + Duration::from_millis(800)).await;
    let samples = load.finish().await;
    let (status, _) = readyz(&server).await;
    assert_eq!(status, 200, "ready again without a restart");
    // Redis came back empty (no persistence): the revocation acknowledged before still holds.
    let res = http().post(server.url("/introspect")).basic_auth(&m.id, m.secret.as_ref()).form(&[("token", revoked.as_str())]).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["active"], false, "a revoked token came back when Redis lost its data");

    let outage: Vec<&Sample> = samples.iter().filter(|s| s.sent >= down + Duration::from_millis(100) && s.sent < back).collect();
    for what in ["introspect", "authorize"] {
        assert!(outage.iter().any(|s| s.what == what && s.status == 503), "{what} was never answered 503 during the outage");
    }
    assert!(outage.iter().filter(|s| s.what == "jwks").all(|s| s.status == 200), "the JWKS needs no store and kept answering");
    let (slowest, recovered) = judge(&samples, down, back, &[503], "redis");
    println!("redis outage: {} requests, slowest answer during the outage {slowest:?}, recovered {recovered:?} after redis was back", samples.len());
    drop(redis);
}

async fn a_blackholed_redis_under_load_is_answered_fast_and_recovers_alone() {
    let upstream_url = url::Url::parse(&redis_url().expect("declared Need::Redis")).unwrap();
    let upstream = tokio::net::lookup_host((upstream_url.host_str().unwrap(), upstream_url.port().unwrap_or(6379))).await.unwrap().next().unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let proxy_addr = proxy.addr;
    let server = TestServer::start_with(Backend::External, |c| {
        c.redis_url = Some(format!("redis://{proxy_addr}"));
        c.store_timeout = STORE_TIMEOUT;
    })
    .await;
    let m = add_machine(&server, "Reports", "reports:read", AuthMethod::ClientSecretBasic).await;
    let access = token(&server, &m).await;
    let (base, id, secret) = (server.base.clone(), m.id.clone(), m.secret.clone());
    let make: MakeRequest = Arc::new(move || match rand::random::<u8>() % 2 {
        0 => ("introspect", http().post(format!("{base}/introspect")).basic_auth(&id, secret.as_ref()).form(&[("token", access.as_str())])),
        _ => ("jwks", http().get(format!("{base}/jwks.json"))),
    });
    let load = Load::start(4, make);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = Instant::now();
    proxy.set(Fault::Blackhole);
    tokio::time::sleep(Duration::from_millis(STORE_TIMEOUT.as_millis() as u64 + 300)).await;
    let (status, body) = readyz(&server).await;
    assert_eq!((status, body["ephemeral"].as_str(), body["database"].as_str()), (503, Some("unreachable"), Some("ok")), "{body}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.set(Fault::None);
    let back = Instant::now();
    tokio::time::sleep(RECOVER_WITHIN + Duration::from_millis(800)).await;
    let samples = load.finish().await;
    assert!(samples.iter().any(|s| s.what == "introspect" && s.status == 503 && s.sent > down), "introspection never said 503");
    let (slowest, recovered) = judge(&samples, down, back, &[503], "redis blackhole");
    println!("redis blackholed: {} requests, slowest answer during the outage {slowest:?}, recovered {recovered:?} after redis answered again", samples.len());
}

/// The answers of each kind, checked once during the outage: JSON for OAuth and the admin
/// API, the HTML page for the browser, JWKS still 200.
async fn answers_during_a_database_outage(server: &TestServer, admin_token: &str, label: &str) {
    // A never-seen client id, so the client cache cannot answer for the database.
    let res = http().post(server.url("/token")).basic_auth(format!("nobody-{}", rand::random::<u32>()), Some("x")).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), 503, "{label}: token endpoint");
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "temporarily_unavailable", "{label}");
    let res = http().get(server.url("/admin/api-keys")).bearer_auth(admin_token).send().await.unwrap();
    assert_eq!(res.status(), 503, "{label}: admin API");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "temporarily_unavailable", "{label}");
    let res = http().post(server.url("/login")).form(&[("username", "alice"), ("password", "whatever"), ("req", "x")]).send().await.unwrap();
    assert!(matches!(res.status().as_u16(), 503 | 400), "{label}: login page answered {}", res.status());
    assert_eq!(http().get(server.url("/jwks.json")).send().await.unwrap().status(), 200, "{label}: JWKS");
    let (status, body) = readyz(server).await;
    assert_eq!((status, body["database"].as_str(), body["ephemeral"].as_str()), (503, Some("unreachable"), Some("ok")), "{label}: {body}");
}

#[derive(Debug, Clone, Copy)]
enum Outage {
    Closed,
    Blackhole,
    Restart,
}

async fn a_database_closed_blackholed_or_restarted_under_load_is_answered_fast_and_recovers_alone() {
    let upstream_url = url::Url::parse(&database_url().expect("declared Need::Postgres")).unwrap();
    let upstream = tokio::net::lookup_host((upstream_url.host_str().unwrap(), upstream_url.port().unwrap_or(5432))).await.unwrap().next().unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let proxy_addr = proxy.addr;
    // Named, so the test can find this server's connections in pg_stat_activity.
    let application = format!("sesame_fault_{}", rand::random::<u32>());
    let server = TestServer::start_with(Backend::External, |c| {
        let mut url = url::Url::parse(&c.database_url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(proxy_addr.port())).unwrap();
        url.query_pairs_mut().append_pair("application_name", &application);
        c.database_url = url.to_string();
        c.store_timeout = STORE_TIMEOUT;
    })
    .await;
    let ops = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let admin_token = token(&server, &ops).await;
    let base = server.base.clone();
    let bearer = admin_token.clone();
    // The admin API reads (and, issuing keys, writes) the database on every call; the JWKS
    // needs neither store.
    let make: MakeRequest = Arc::new(move || match rand::random::<u8>() % 3 {
        0 => ("admin list", http().get(format!("{base}/admin/api-keys")).bearer_auth(&bearer)),
        1 => ("admin generate", http().post(format!("{base}/admin/api-keys")).bearer_auth(&bearer).json(&serde_json::json!({"name": "load", "scope": "reports:read"}))),
        _ => ("jwks", http().get(format!("{base}/jwks.json"))),
    });
    let mut acknowledged = Vec::new();
    for outage in [Outage::Closed, Outage::Blackhole, Outage::Restart] {
        let label = format!("{outage:?}");
        let load = Load::start(4, make.clone());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let down = Instant::now();
        match outage {
            Outage::Closed => proxy.set(Fault::Closed),
            Outage::Blackhole => proxy.set(Fault::Blackhole),
            Outage::Restart => {
                // What a PostgreSQL restart does to its clients: every session ends with FATAL
                // 57P01 (administrator command), then connections are refused until it is up.
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&database_url().unwrap()).await.unwrap();
                let ended: i64 = sqlx::query_scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1")
                    .bind(&application)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
                assert!(ended > 0, "none of the server's sessions were found to end");
                proxy.set(Fault::Closed);
            }
        }
        tokio::time::sleep(Duration::from_millis(STORE_TIMEOUT.as_millis() as u64 + 300)).await;
        answers_during_a_database_outage(&server, &admin_token, &label).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        proxy.set(Fault::None);
        let back = Instant::now();
        tokio::time::sleep(RECOVER_WITHIN + Duration::from_millis(800)).await;
        let samples = load.finish().await;
        let (status, body) = readyz(&server).await;
        assert_eq!(status, 200, "{label}: ready again without a restart: {body}");
        assert!(samples.iter().any(|s| s.what == "admin list" && s.status == 503 && s.sent > down), "{label}: the admin API never said 503");
        let (slowest, recovered) = judge(&samples, down, back, &[503], &label);
        println!("database {label}: {} requests, slowest answer during the outage {slowest:?}, recovered {recovered:?} after the database was back", samples.len());
        acknowledged.extend(samples.into_iter().filter_map(|s| s.created));
    }
    // Every key the server said it issued, across both faults, is in the database.
    for id in &acknowledged {
        assert!(server.state.durable.api_key(id).await.unwrap().is_some(), "acknowledged API key {id} was lost");
    }
    assert!(acknowledged.len() > 10, "only {} keys were issued under load", acknowledged.len());
    println!("database outages: {} acknowledged API keys checked, none lost", acknowledged.len());
}
