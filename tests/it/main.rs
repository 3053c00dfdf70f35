//! Integration tests: the real router on 127.0.0.1:0, on SQLite + the in-process store and on
//! PostgreSQL + Redis, with real browsers and relying-party libraries.
//!
//! A custom harness (libtest-mimic) so that what this machine cannot run is reported as ignored
//! instead of passing: `cargo test` and `cargo nextest run` both show it in their summaries.
//! PostgreSQL and Redis are found on 127.0.0.1 (or `SESAME_TEST_DATABASE_URL` /
//! `SESAME_TEST_REDIS_URL`); `tests/run` provisions everything and requires all of it.

mod support;

mod authorize;

use support::harness::{environment, require_all, Tests};

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let modules: &[(&'static str, fn(&mut Tests))] = &[
        ("authorize", authorize::tests),
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
    libtest_mimic::run(&args, trials).exit();
}
