//! Password guessing: the failure limits hold when the guesses arrive all at once.

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("parallel_guesses_cannot_all_slip_under_the_limit", parallel_guesses_cannot_all_slip_under_the_limit);
}

async fn parallel_guesses_cannot_all_slip_under_the_limit(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.login.max_failures_per_account = 3).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let attacker = Browser::new();
    let res = attacker.get(&authorize_url(&server, &app, &pkce(), &[])).await;
    let page = attacker.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let (req, csrf) = (hidden(&page, "req"), hidden(&page, "csrf"));
    let guesses: Vec<_> = (0..24)
        .map(|i| {
            let form = [("req", req.clone()), ("csrf", csrf.clone()), ("username", "alice".to_string()), ("password", format!("guess {i}"))];
            let request = attacker.http.post(server.url("/login")).form(&form).send();
            tokio::spawn(async move { request.await.unwrap().status().as_u16() })
        })
        .collect();
    let mut checked = 0;
    for g in guesses {
        match g.await.unwrap() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(checked <= 3, "{backend:?}: {checked} of 24 parallel guesses had their password checked; the limit is 3");
    // The right password is throttled too, until the window passes.
    let form = [("req", req), ("csrf", csrf), ("username", "alice".to_string()), ("password", PASSWORD.to_string())];
    assert_eq!(attacker.http.post(server.url("/login")).form(&form).send().await.unwrap().status(), 429);
}
