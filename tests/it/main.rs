//! Integration tests: the real router on 127.0.0.1:0, on the embedded backends always and on
//! PostgreSQL + Redis when SESAME_TEST_DATABASE_URL / SESAME_TEST_REDIS_URL are set.

mod sso_support;
mod support;

mod api_keys;
mod authorize;
mod browser;
mod cli;
mod cli_api_keys;
mod client_credentials;
mod code_grant;
mod discovery;
mod examples;
mod keys;
mod logout;
mod openid_rp;
mod machine_support;
mod readiness;
mod sso;
mod stores;
mod token_lifecycle;
