//! `sesame apikey` and `sesame audit` as a user runs them, against a real `sesame serve`
//! process: a revocation from the CLI reaches the running server (through Redis at once, or
//! when the server's 1 s cache entry expires without it), and no key material reaches the logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::harness::Tests;
use crate::support::{http, output_within, wait_for_subscribers, Backend, TestDatabase};

pub fn tests(t: &mut Tests) {
    t.each_backend("apikey_commands_and_a_revocation_reaching_a_running_server", apikey_commands_and_a_revocation_reaching_a_running_server);
}

/// The longest one CLI command, or the server's start, may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

struct Env {
    database_url: String,
    redis_url: Option<String>,
    dir: tempfile::TempDir,
}

impl Env {
    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
        cmd.current_dir(self.dir.path())
            .env("SESAME_DATABASE_URL", &self.database_url)
            .env("SESAME_PASSWORD__MEMORY_KIB", "64")
            .env("SESAME_PASSWORD__ITERATIONS", "1")
            .env_remove("SESAME_CONFIG");
        match &self.redis_url {
            Some(url) => cmd.env("SESAME_REDIS_URL", url),
            None => cmd.env_remove("SESAME_REDIS_URL"),
        };
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        output_within(cmd, None, COMMAND_LIMIT)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        output_within(cmd, Some(stdin), COMMAND_LIMIT)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.run(&args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
        serde_json::from_str(&stdout).unwrap()
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sesame serve` on a port it picks itself (`127.0.0.1:0`) and reads the address back
/// from its `listening on <addr>` line: no port is chosen here and handed over.
fn serve(env: &Env, cache_ttl: &str) -> Server {
    let log = env.dir.path().join("server.log");
    let mut child = env
        .command()
        .arg("serve")
        .env("SESAME_LISTEN", "127.0.0.1:0")
        .env("SESAME_ISSUER", "http://127.0.0.1")
        .env("SESAME_API_KEYS__CACHE_TTL", cache_ttl)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel::<String>();
    // Reads the first line, then drains the rest so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut lines = stdout.lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    let mut server = Server { child, base: String::new() };
    let line = rx.recv_timeout(COMMAND_LIMIT).unwrap_or_else(|e| {
        panic!("sesame serve printed no `listening on` line ({e:?}); its log: {}", std::fs::read_to_string(&log).unwrap_or_default())
    });
    let addr = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("{line}: {}", std::fs::read_to_string(&log).unwrap_or_default()));
    let addr: std::net::SocketAddr = addr.trim().parse().unwrap_or_else(|e| panic!("`{addr}` is not an address: {e}"));
    assert_ne!(addr.port(), 0);
    server.base = format!("http://{addr}");
    server
}

async fn exchange(server: &Server, key: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", key),
        ("subject_token_type", "urn:sesame:params:oauth:token-type:api_key"),
    ];
    let res = http().post(format!("{}/token", server.base)).form(&form).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn apikey_commands_and_a_revocation_reaching_a_running_server(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let redis_url = (backend == Backend::External).then(|| crate::support::redis_url().expect("the postgres_redis variant needs Redis"));
    let env = Env { database_url: db.url.clone(), redis_url, dir: tempfile::tempdir().unwrap() };
    // With Redis the cache may live long: the revocation message must do the work.
    let server = serve(&env, if backend == Backend::External { "10m" } else { "1s" });

    let issued = env.json(&["apikey", "generate", "billing-sync", "--scope", "invoices:read", "--env", "prod", "--expires-in", "30d", "--rate-limit", "100"]);
    let key = issued["key"].as_str().unwrap().to_string();
    let id = issued["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("ses_prod_"));

    let human = env.run(&["apikey", "list"]);
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains(&id) && human.contains("ses_prod_") && !human.contains(&key), "{human}");
    let listed = env.json(&["apikey", "list"]);
    assert_eq!(listed["keys"][0]["state"], "active");
    assert!(!listed.to_string().contains(&key));

    let tested = env.json(&["apikey", "test", &key]);
    assert_eq!(tested["valid"], true);
    assert_eq!(tested["key"]["name"], "billing-sync");
    assert!(tested["lookup_micros"].as_u64().is_some());
    let bad = env.run(&["apikey", "test", "ses_prod_definitelynotarealkeyatall00_AAAAAA"]);
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stderr));
    // The key kept out of the command line: from stdin (no KEY, or `-`) or from a file.
    for args in [vec!["apikey", "test", "--json"], vec!["apikey", "test", "-", "--json"]] {
        let out = env.run_with_stdin(&args, &format!("{key}\n"));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["valid"], true, "{args:?}");
    }
    let key_file = env.dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    assert_eq!(env.json(&["apikey", "test", "--key-file", key_file.to_str().unwrap()])["valid"], true);

    assert_eq!(exchange(&server, &key).await.0, 200, "{backend:?}");
    if backend == Backend::External {
        // The server listens for revocations before one is sent (`sesame serve` uses the
        // `sesame:` keyspace).
        wait_for_subscribers("sesame:", 1).await;
    }
    env.json(&["apikey", "revoke", &id]);
    // With Redis the server's cache (10 min) is emptied by the revocation message; without it,
    // its entry expires after 1 s. Either way the key is refused well within 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    let refused = loop {
        let (status, body) = exchange(&server, &key).await;
        if status != 200 {
            break (status, body);
        }
        assert!(Instant::now() < deadline, "{backend:?}: the server still accepts a key revoked from the CLI 3 s later");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(refused.0, 400, "{backend:?}: {}", refused.1);
    assert_eq!(refused.1["error"], "invalid_grant");
    let tested = env.run(&["apikey", "test", &key, "--json"]);
    assert_eq!(tested.status.code(), Some(1));
    let tested: Value = serde_json::from_slice(&tested.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&tested.stderr)));
    assert_eq!((tested["valid"].clone(), tested["reason"].clone()), (serde_json::json!(false), serde_json::json!("revoked")), "{tested}");

    let rotated_from = env.json(&["apikey", "generate", "rotating"]);
    let rotated = env.json(&["apikey", "rotate", rotated_from["id"].as_str().unwrap(), "--grace", "1h"]);
    assert_eq!(rotated["replaces"], rotated_from["id"]);
    assert_eq!(env.json(&["apikey", "test", rotated_from["key"].as_str().unwrap()])["valid"], true, "old key within grace");
    assert_eq!(env.json(&["apikey", "test", rotated["key"].as_str().unwrap()])["valid"], true);

    let audit = env.json(&["audit", "tail", "--key", &id, "--limit", "1000"]);
    let events = audit["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"api_key.generate") && kinds.contains(&"api_key.refused") && kinds.contains(&"api_key.revoke"), "{kinds:?}");
    assert!(events.windows(2).all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()), "newest last");
    assert!(!audit.to_string().contains(&key), "key material in the audit log");

    drop(server);
    let log = std::fs::read_to_string(env.dir.path().join("server.log")).unwrap();
    assert!(log.contains("sesame ready"), "the log was captured");
    assert!(!log.contains(&key) && !log.contains(&key[9..]), "key material in the server log");
}
