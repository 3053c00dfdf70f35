//! The admin CLI as a user runs it: exit codes, one JSON object with --json, one line on error.

use std::process::{Command, Output};
use std::time::Duration;

use crate::support::harness::{Database, Tests};
use crate::support::{output_within, TestDatabase};

/// The longest one CLI command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

pub fn tests(t: &mut Tests) {
    t.each_database("client_commands", client_commands)
        .test("client_validation_and_usage_errors", client_validation_and_usage_errors)
        .each_database("user_commands", user_commands)
        .test("key_and_migrate_commands", key_and_migrate_commands)
        .test("serve_refuses_a_bad_configuration_with_a_clear_message", serve_refuses_a_bad_configuration_with_a_clear_message);
}

pub(crate) struct Cli {
    pub(crate) dir: tempfile::TempDir,
    database_url: String,
    /// `SESAME_KEK`; unset, the CLI uses (and creates) `keys/kek` in `dir`.
    kek: Option<String>,
}

impl Cli {
    pub(crate) fn new(db: &TestDatabase) -> Self {
        Self::on(&db.url, None)
    }

    /// On the database at `database_url`, with the key-encryption key `kek` (a server's, say).
    pub(crate) fn on(database_url: &str, kek: Option<&str>) -> Self {
        Self { dir: tempfile::tempdir().unwrap(), database_url: database_url.to_string(), kek: kek.map(str::to_string) }
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("SESAME_DATABASE_URL", &self.database_url)
            .env("SESAME_PASSWORD__MEMORY_KIB", "64")
            .env("SESAME_PASSWORD__ITERATIONS", "1")
            .env_remove("SESAME_REDIS_URL")
            .env_remove("SESAME_CONFIG");
        match &self.kek {
            Some(kek) => cmd.env("SESAME_KEK", kek),
            None => cmd.env_remove("SESAME_KEK"),
        };
        output_within(cmd, stdin, COMMAND_LIMIT)
    }

    /// Runs a --json command that must succeed; returns its one JSON object.
    pub(crate) fn json(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        // First: the arguments may end with `-- <client id>`.
        let args = [&["--json"], args].concat();
        let out = self.run(&args, stdin);
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.trim().lines().count(), 1, "--json prints exactly one line: {stdout}");
        serde_json::from_str(&stdout).unwrap()
    }

    /// Runs a command that must fail with `code`; returns stderr.
    pub(crate) fn fails(&self, args: &[&str], stdin: Option<&str>, code: i32) -> String {
        let out = self.run(args, stdin);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    }
}

async fn client_commands(backend: Database) {
    let db = TestDatabase::of(backend).await;
    let cli = Cli::new(&db);
    let created = cli.json(&["client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb"], None);
    // Client ids are random base64url and may start with `-`: they follow `--` below.
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 43, "256-bit secret");
    assert_eq!(created["auth_method"], "client_secret_basic");
    assert_eq!(created["require_mfa"], false);
    assert_eq!(created["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(created["scopes"], serde_json::json!(["openid", "profile", "email"]));

    let shown = cli.json(&["client", "show", "--", &id], None);
    assert_eq!(shown["name"], "Wiki");
    assert!(shown.get("client_secret").is_none() && !shown.to_string().contains(&secret), "secrets are shown once");

    let listed = cli.json(&["client", "list"], None);
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);

    let rotated = cli.json(&["client", "rotate-secret", "--", &id], None);
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    let stored = db.open().await.client(&id).await.unwrap().unwrap();
    assert!(sesame::crypto::secrets::secret_matches(rotated["client_secret"].as_str().unwrap(), stored.secret_hash.as_ref().unwrap()));
    assert!(!sesame::crypto::secrets::secret_matches(&secret, stored.secret_hash.as_ref().unwrap()), "{backend:?}: old secret still valid");

    let public = cli.json(&["client", "add", "--name", "SPA", "--public", "--redirect-uri", "http://127.0.0.1:3000/cb"], None);
    assert!(public["client_secret"].is_null());
    assert_eq!(public["auth_method"], "none");

    let machine = cli.json(&["client", "add", "--name", "Batch", "--grant-type", "client_credentials", "--scope", "reports:read"], None);
    assert!(machine["client_secret"].is_string());

    cli.json(&["client", "remove", "--", &id], None);
    let err = cli.fails(&["client", "show", "--", &id], None, 1);
    assert_eq!(err.trim().lines().count(), 1, "one line on error: {err}");
    assert!(err.contains("not found"));
    let strict = cli.json(&["client", "add", "--name", "Payroll", "--redirect-uri", "https://payroll.example.com/cb", "--require-mfa"], None);
    assert_eq!(strict["require_mfa"], true, "--require-mfa is stored");
    assert_eq!((strict["require_dpop"].clone(), strict["require_par"].clone()), (serde_json::json!(false), serde_json::json!(false)));
    let bound = cli.json(&["client", "add", "--name", "Mobile", "--public", "--redirect-uri", "http://127.0.0.1:3000/cb", "--require-dpop", "--require-par"], None);
    assert_eq!((bound["require_dpop"].clone(), bound["require_par"].clone()), (serde_json::json!(true), serde_json::json!(true)), "--require-dpop and --require-par are stored");
    let err = cli.fails(&["client", "add", "--name", "Batch2", "--grant-type", "client_credentials", "--require-par"], None, 1);
    assert!(err.contains("--require-par"), "{err}");
}

async fn client_validation_and_usage_errors() {
    let db = TestDatabase::of(Database::Sqlite).await;
    let cli = Cli::new(&db);
    let err = cli.fails(&["client", "add", "--name", "NoRedirect"], None, 1);
    assert!(err.contains("redirect-uri"), "{err}");
    let err = cli.fails(&["client", "add", "--name", "Plain", "--redirect-uri", "http://app.example.com/cb"], None, 1);
    assert!(err.contains("https"), "{err}");
    let err = cli.fails(&["client", "add", "--name", "X", "--public", "--grant-type", "client_credentials"], None, 1);
    assert!(err.contains("public client"), "{err}");
    cli.fails(&["client", "add"], None, 2);
    cli.fails(&["client", "frobnicate"], None, 2);
    cli.fails(&["client", "add", "--name", "X", "--auth-method", "magic"], None, 2);
}

async fn user_commands(backend: Database) {
    let db = TestDatabase::of(backend).await;
    let cli = Cli::new(&db);
    let created = cli.json(&["user", "add", "alice", "--password-stdin", "--email", "alice@example.com", "--name", "Alice"], Some("correct horse battery\n"));
    let sub = created["sub"].as_str().unwrap();
    assert!(!created.to_string().contains("argon2"), "hashes are not printed");
    let stored = db.open().await.user(sub).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"), "{backend:?}");

    let err = cli.fails(&["user", "add", "alice", "--password-stdin"], Some("another password"), 1);
    assert!(err.contains("already exists"), "{err}");
    let err = cli.fails(&["user", "add", "bob", "--password-stdin"], Some("short"), 1);
    assert!(err.contains("at least"), "{err}");

    cli.json(&["user", "passwd", "alice", "--password-stdin"], Some("a new long password"));
    let after = db.open().await.user(sub).await.unwrap().unwrap();
    assert_ne!(after.password_hash, stored.password_hash);
    let granted = cli.json(&["user", "role", "add", "alice", "admin"], None);
    assert_eq!((granted["held"].as_bool(), granted["changed"].as_bool()), (Some(true), Some(true)));
    assert_eq!(cli.json(&["user", "role", "add", "alice", "admin"], None)["changed"], false, "granting twice changes nothing");
    assert_eq!(cli.json(&["user", "list"], None)["users"][0]["roles"], serde_json::json!(["admin"]));
    let err = cli.fails(&["user", "role", "add", "alice", "root"], None, 1);
    assert!(err.contains("unknown role") && err.contains("admin"), "{err}");
    let err = cli.fails(&["user", "role", "add", "nobody", "admin"], None, 1);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(cli.json(&["user", "role", "remove", "alice", "admin"], None)["changed"], true);
    assert_eq!(cli.json(&["user", "list"], None)["users"][0]["roles"], serde_json::json!([]));
    cli.json(&["user", "disable", "alice"], None);
    let list = cli.json(&["user", "list"], None);
    assert_eq!(list["users"][0]["username"], "alice");
    assert_eq!(list["users"][0]["disabled"], true);
    let err = cli.fails(&["user", "disable", "nobody"], None, 1);
    assert!(err.contains("not found") && err.contains("nobody"), "{err}");
}

async fn key_and_migrate_commands() {
    let db = TestDatabase::of(Database::Sqlite).await;
    let cli = Cli::new(&db);
    let migrated = cli.run(&["migrate"], None);
    assert!(migrated.status.success());
    let empty = cli.json(&["key", "list"], None);
    assert_eq!(empty["keys"], serde_json::json!([]));
    let rotated = cli.json(&["key", "rotate"], None);
    let keys = rotated["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k["state"] == "next"), "{rotated}");
    assert!(cli.dir.path().join("keys/kek").exists(), "the key-encryption key was created in keys/");
    let again = cli.json(&["key", "rotate", "--now"], None);
    assert_eq!(again["keys"].as_array().unwrap().iter().filter(|k| k["state"] == "active").count(), 3);
}

async fn serve_refuses_a_bad_configuration_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sesame"));
    cmd.args(["serve"]).current_dir(dir.path()).env("SESAME_ISSUER", "http://id.example.com").env("SESAME_LISTEN", "not-an-address");
    let out = output_within(cmd, None, COMMAND_LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("issuer: must use https"), "{err}");
    assert!(err.contains("listen:"), "{err}");
    assert!(!dir.path().join("sesame.db").exists(), "nothing is created before the configuration is valid");
}
