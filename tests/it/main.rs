//! Integration tests: the real router on 127.0.0.1:0, on SQLite + the in-process store and on
//! PostgreSQL + Redis, with real browsers and relying-party libraries.
//!
//! A custom harness (libtest-mimic) so that what this machine cannot run is reported as ignored
//! instead of passing: `cargo test` and `cargo nextest run` both show it in their summaries.
//! PostgreSQL and Redis are found on 127.0.0.1 (or `SESAME_TEST_DATABASE_URL` /
//! `SESAME_TEST_REDIS_URL`); `tests/run` provisions everything and requires all of it.
//!
//! Laid out like the routes: a file per endpoint (authorize, token and each grant, introspect,
//! revoke, userinfo, login, consent, logout, account, discovery, admin_api, admin_clients, device), a file per flow
//! (sso, openid_rp, browser, examples, cross_node, redis_cluster, device_client), the CLI, key rotation, second factors (mfa), passkeys,
//! readiness, SSO sessions and the storage suites (factors among them); the adversarial suite in `attacks/`,
//! process faults (drain, crash) in `faults/`; everything they share lives in `support/`.

mod support;

mod attacks;
mod faults;

// Endpoints.
mod account;
mod admin_api;
mod admin_clients;
mod authorize;
mod consent;
mod discovery;
mod dpop;
mod par;
mod introspect;
mod login;
mod mfa_sign_in;
mod passkeys;
mod logout;
mod backchannel_logout;
mod revoke;
mod token;
mod mtls;
mod userinfo;
// Grants of the token endpoint.
mod authorization_code;
mod client_credentials;
mod device;
mod refresh_token;
mod token_exchange;
// Flows across endpoints, nodes and real clients.
mod browser;
mod browser_passkeys;
mod cross_node;
mod redis_cluster;
mod dpop_par_clients;
mod device_client;
mod examples;
mod openid_rp;
mod sso;
mod step_up;
mod upstream;
mod upstream_node;
// Beside the HTTP endpoints.
mod api_key_usage;
mod api_keys;
mod cli;
mod cli_api_keys;
mod cli_mfa;
mod factors;
mod keys;
mod mfa;
mod readiness;
mod sessions;
mod store_transactions;
mod stores;
mod logout_outbox;

use support::harness::{environment, require_all, Tests};

fn main() {
    // The test binary links two rustls providers (ring via dev-dependencies, aws-lc via sesame
    // and fantoccini): every HTTP client needs one chosen, also in a process that runs a single
    // test (nextest) before any server has chosen it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = libtest_mimic::Arguments::from_args();
    let modules: &[(&'static str, fn(&mut Tests))] = &[
        ("account", account::tests),
        ("admin_api", admin_api::tests),
        ("admin_clients", admin_clients::tests),
        ("authorize", authorize::tests),
        ("consent", consent::tests),
        ("discovery", discovery::tests),
        ("dpop", dpop::tests),
        ("par", par::tests),
        ("introspect", introspect::tests),
        ("login", login::tests),
        ("mfa_sign_in", mfa_sign_in::tests),
        ("passkeys", passkeys::tests),
        ("logout", logout::tests),
        ("backchannel_logout", backchannel_logout::tests),
        ("revoke", revoke::tests),
        ("token", token::tests),
        ("mtls", mtls::tests),
        ("userinfo", userinfo::tests),
        ("authorization_code", authorization_code::tests),
        ("client_credentials", client_credentials::tests),
        ("device", device::tests),
        ("refresh_token", refresh_token::tests),
        ("token_exchange", token_exchange::tests),
        ("browser", browser::tests),
        ("browser_passkeys", browser_passkeys::tests),
        ("cross_node", cross_node::tests),
        ("redis_cluster", redis_cluster::tests),
        ("dpop_par_clients", dpop_par_clients::tests),
        ("device_client", device_client::tests),
        ("examples", examples::tests),
        ("openid_rp", openid_rp::tests),
        ("sso", sso::tests),
        ("step_up", step_up::tests),
        ("upstream", upstream::tests),
        ("upstream_node", upstream_node::tests),
        ("api_key_usage", api_key_usage::tests),
        ("api_keys", api_keys::tests),
        ("cli", cli::tests),
        ("cli_api_keys", cli_api_keys::tests),
        ("cli_mfa", cli_mfa::tests),
        ("factors", factors::tests),
        ("keys", keys::tests),
        ("mfa", mfa::tests),
        ("readiness", readiness::tests),
        ("sessions", sessions::tests),
        ("store_transactions", store_transactions::tests),
        ("stores", stores::tests),
        ("logout_outbox", logout_outbox::tests),
        ("attacks", attacks::tests),
        ("faults", faults::tests),
    ];
    let mut trials = Vec::new();
    for (module, register) in modules {
        let mut tests = Tests::new(module);
        register(&mut tests);
        trials.extend(tests.into_trials());
    }
    if !args.list {
        let env = environment();
        for (_, why) in &env.missing {
            let verdict = if require_all() { "tests needing it FAIL" } else { "tests needing it are ignored" };
            eprintln!("missing: {why} ({verdict})");
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    support::redis_cluster::stop_shared();
    conclusion.exit();
}
