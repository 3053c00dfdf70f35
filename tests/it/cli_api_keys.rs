//! `sesame apikey` and `sesame audit` as a user runs them, against a real `sesame serve`
//! process: revocation from the CLI reaches the server within a second, and no key material
//! reaches the logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{backends, http, Backend, TestDatabase};

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
        self.command().args(args).stdin(Stdio::null()).output().unwrap()
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
    _stdout: BufReader<std::process::ChildStdout>,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, cache_ttl: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = env.dir.path().join("server.log");
    let mut child = env
        .command()
        .arg("serve")
        .env("SESAME_LISTEN", format!("127.0.0.1:{port}"))
        .env("SESAME_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("SESAME_API_KEYS__CACHE_TTL", cache_ttl)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line}: {}", std::fs::read_to_string(&log).unwrap_or_default());
    Server { child, _stdout: stdout, base: format!("http://127.0.0.1:{port}") }
}

async fn exchange(server: &Server, key: &str) -> u16 {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", key),
        ("subject_token_type", "urn:sesame:params:oauth:token-type:api_key"),
    ];
    http().post(format!("{}/token", server.base)).form(&form).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn apikey_commands_and_a_revocation_reaching_a_running_server() {
    for backend in backends() {
        let db = TestDatabase::new(backend).await;
        let redis_url = (backend == Backend::External).then(|| crate::support::redis_url().unwrap());
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
        assert_eq!(bad.status.code(), Some(1));

        assert_eq!(exchange(&server, &key).await, 200, "{backend:?}");
        env.json(&["apikey", "revoke", &id]);
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut status = 200;
        while Instant::now() < deadline && status == 200 {
            status = exchange(&server, &key).await;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(status, 400, "{backend:?}: the server still accepts a key revoked from the CLI");
        assert_eq!(env.run(&["apikey", "test", &key]).status.code(), Some(1));

        let rotated_from = env.json(&["apikey", "generate", "rotating"]);
        let rotated = env.json(&["apikey", "rotate", rotated_from["id"].as_str().unwrap(), "--grace", "1h"]);
        assert_eq!(rotated["replaces"], rotated_from["id"]);
        assert_eq!(env.json(&["apikey", "test", rotated_from["key"].as_str().unwrap()])["valid"], true, "old key within grace");
        assert_eq!(env.json(&["apikey", "test", rotated["key"].as_str().unwrap()])["valid"], true);

        let audit = env.json(&["audit", "tail", "--key", &id, "--limit", "1000"]);
        let events = audit["events"].as_array().unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"api_key.generate") && kinds.contains(&"api_key.verify") && kinds.contains(&"api_key.revoke"), "{kinds:?}");
        assert!(events.windows(2).all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()), "newest last");
        assert!(!audit.to_string().contains(&key), "key material in the audit log");

        drop(server);
        let log = std::fs::read_to_string(env.dir.path().join("server.log")).unwrap();
        assert!(log.contains("sesame ready"), "the log was captured");
        assert!(!log.contains(&key) && !log.contains(&key[9..]), "key material in the server log");
    }
}
