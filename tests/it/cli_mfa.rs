//! `sesame user totp add`, `sesame user mfa list|reset` as an administrator runs them; and a
//! TOTP secret provisioned by the CLI verifying at a server on the same database and KEK.

use serde_json::Value;
use sesame::clock::{Clock, SystemClock};
use sesame::mfa::{Method, Mfa, MfaError, Throttle};

use crate::cli::Cli;
use crate::mfa::app_code;
use crate::support::harness::{Database, Tests};
use crate::support::{base64_kek, Backend, TestDatabase, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_database("user_totp_add_then_mfa_list_and_reset", user_totp_add_then_mfa_list_and_reset)
        .test("mfa_commands_refuse_unknown_users_and_bad_usage", mfa_commands_refuse_unknown_users_and_bad_usage)
        .each_backend("a_cli_provisioned_code_verifies_at_the_server", a_cli_provisioned_code_verifies_at_the_server);
}

const PASSWORD: Option<&str> = Some("correct horse battery\n");

async fn user_totp_add_then_mfa_list_and_reset(database: Database) {
    let db = TestDatabase::of(database).await;
    let cli = Cli::on(&db.url, Some(&base64_kek()));
    let sub = cli.json(&["user", "add", "alice", "--password-stdin"], PASSWORD)["sub"].as_str().unwrap().to_string();

    let added = cli.json(&["user", "totp", "add", "alice", "--name", "Work phone"], None);
    let secret = added["secret"].as_str().unwrap();
    let uri = added["otpauth_uri"].as_str().unwrap();
    assert_eq!(uri, format!("otpauth://totp/127.0.0.1:alice?secret={secret}&issuer=127.0.0.1"), "{database:?}");
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let codes: Vec<&str> = added["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(codes.len(), 10, "a first factor brings recovery codes: {added}");

    let list = cli.json(&["user", "mfa", "list", "alice"], None);
    let factors = list["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1, "{list}");
    let f = &factors[0];
    assert_eq!((&f["id"], &f["kind"], &f["name"], &f["confirmed"]), (&added["factor_id"], &Value::from("totp"), &Value::from("Work phone"), &Value::from(true)));
    assert!(f["created_at"].is_i64() && f["last_used_at"].is_null(), "{f}");
    assert_eq!(list["recovery_codes_left"], 10);
    assert!(!list.to_string().contains(secret), "list shows no secret");

    // A second app: no new recovery codes (the first ones still stand).
    let second = cli.json(&["user", "totp", "add", "alice"], None);
    assert!(second["recovery_codes"].is_null(), "{second}");
    assert_ne!(second["secret"], added["secret"]);
    // (Oldest first; both were made within the same second here, so compare them sorted.)
    let mut names: Vec<String> = cli.json(&["user", "mfa", "list", "alice"], None)["factors"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["Authenticator app", "Work phone"]);

    let reset = cli.json(&["user", "mfa", "reset", "alice"], None);
    assert_eq!((&reset["factors_removed"], &reset["recovery_codes_removed"]), (&Value::from(2), &Value::from(10)), "{reset}");
    assert_eq!(reset["factors"], serde_json::json!([]));
    let after = cli.json(&["user", "mfa", "list", "alice"], None);
    assert_eq!((after["factors"].as_array().unwrap().len(), &after["recovery_codes_left"]), (0, &Value::from(0)), "{after}");

    // Audited, without the secret or the codes.
    let events = db.open().await.recent_audit(Some(&sub), 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["mfa.totp.enrol", "mfa.recovery_codes.generate", "mfa.totp.enrol", "mfa.reset"], "{database:?}");
    assert!(events.iter().all(|e| e.caller.as_deref() == Some("cli")));
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(secret) && !codes.iter().any(|c| text.contains(c)), "{text}");

    // Human output names what is there.
    cli.json(&["user", "totp", "add", "alice", "--name", "Tablet"], None);
    let out = cli.run(&["user", "mfa", "list", "alice"], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("totp  Tablet  confirmed") && text.contains("recovery codes left: 10"), "{text}");
}

async fn mfa_commands_refuse_unknown_users_and_bad_usage() {
    let db = TestDatabase::of(Database::Sqlite).await;
    let cli = Cli::new(&db);
    cli.json(&["user", "add", "alice", "--password-stdin"], PASSWORD);
    for args in [&["user", "mfa", "list", "nobody"][..], &["user", "mfa", "reset", "nobody"], &["user", "totp", "add", "nobody"]] {
        let err = cli.fails(args, None, 1);
        assert!(err.contains("not found") && err.contains("nobody") && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
    // Listing and resetting need no key-encryption key, and create none.
    cli.json(&["user", "mfa", "list", "alice"], None);
    cli.json(&["user", "mfa", "reset", "alice"], None);
    assert!(!cli.dir.path().join("keys/kek").exists(), "a KEK was created by a command that needs none");
    let err = cli.fails(&["user", "totp", "add", "alice", "--name", " "], None, 1);
    assert!(err.contains("name"), "{err}");
    cli.fails(&["user", "mfa", "frobnicate", "alice"], None, 2);
    cli.fails(&["user", "mfa", "list"], None, 2);
    cli.fails(&["user", "totp", "remove", "alice"], None, 2);
}

async fn a_cli_provisioned_code_verifies_at_the_server(backend: Backend) {
    let server = TestServer::start(backend).await;
    let state = &server.state;
    let cli = Cli::on(&state.config.database_url, state.config.kek.as_deref());
    let sub = cli.json(&["user", "add", "alice", "--password-stdin"], PASSWORD)["sub"].as_str().unwrap().to_string();
    let added = cli.json(&["user", "totp", "add", "alice"], None);
    let uri = added["otpauth_uri"].as_str().unwrap();

    let now = SystemClock.now();
    let (mfa, throttle) = (Mfa::of(state), Throttle::of(state));
    let code = app_code(uri, now);
    assert_eq!(mfa.verify_second_factor(&throttle, &sub, &code, None, now).await.unwrap(), Method::Otp, "{backend:?}");
    assert!(matches!(mfa.verify_second_factor(&throttle, &sub, &code, None, now).await, Err(MfaError::WrongCode)), "{backend:?}: replayed");
    let recovery = added["recovery_codes"][0].as_str().unwrap();
    assert_eq!(mfa.verify_second_factor(&throttle, &sub, recovery, None, now).await.unwrap(), Method::Recovery);

    // After a reset (a lost phone) the app's codes and the recovery codes are worthless.
    cli.json(&["user", "mfa", "reset", "alice"], None);
    let later = app_code(uri, now + 30);
    assert!(matches!(mfa.verify_second_factor(&throttle, &sub, &later, None, now + 30).await, Err(MfaError::WrongCode)), "{backend:?}");
    let other = added["recovery_codes"][1].as_str().unwrap();
    assert!(matches!(mfa.verify_second_factor(&throttle, &sub, other, None, now + 30).await, Err(MfaError::WrongCode)), "{backend:?}");
}
