//! The machine's signing ceiling: JWT access tokens signed per second by a loop over one parsed
//! key on every core, with the payload the token endpoint signs. Prints one JSON object.
//! Usage: cargo run --release --bin sign-ceiling -- [seconds]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sesame::crypto::jwt;
use sesame::crypto::keys::{generate, SigningAlg, SigningKeyPair};

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut out = serde_json::Map::new();
    for alg in SigningAlg::ALL {
        let generated = generate(alg).expect("key");
        let key = Arc::new(SigningKeyPair::from_pkcs8(&generated.kid, alg, &generated.pkcs8_der).expect("parse"));
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (key, count, stop) = (key.clone(), count.clone(), stop.clone());
                std::thread::spawn(move || {
                    let claims = serde_json::json!({
                        "iss": "http://127.0.0.1:8080", "sub": "bench-client", "aud": "http://127.0.0.1:8080",
                        "client_id": "bench-client", "scope": "api:read", "jti": "AAAAAAAAAAAAAAAAAAAAAA",
                        "iat": 1_800_000_000u64, "exp": 1_800_000_900u64,
                    });
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::black_box(jwt::sign(&key, "at+jwt", &claims).expect("sign"));
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
        let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        out.insert(alg.to_string(), serde_json::json!(rate.round()));
    }
    out.insert("threads".into(), serde_json::json!(threads));
    println!("{}", serde_json::Value::Object(out));
}
