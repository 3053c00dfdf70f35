//! A code replayed at any moment, even racing its first redemption, revokes what the code
//! issued (RFC 6749 §4.1.2, RFC 9700 §4.5.3).

use serde_json::Value;

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_code_replayed_during_its_redemption_still_revokes_it", a_code_replayed_during_its_redemption_still_revokes_it);
}

async fn a_code_replayed_during_its_redemption_still_revokes_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let app = add_client(&server, "App", true, false).await;
    let browser = Browser::new();
    sign_in(&browser, &server, &authorize_url(&server, &app, &pkce(), &[]), "alice").await;
    for round in 0..12 {
        let p = pkce();
        let res = browser.get(&authorize_url(&server, &app, &p, &[])).await;
        let code = query_param(&location(&res), "code").expect("single sign-on gives a code at once");
        // The code's redemption and its replay, at the same moment.
        let (a, b) = tokio::join!(redeem(&server, &app, &code, &p.verifier), redeem(&server, &app, &code, &p.verifier));
        let winners: Vec<Value> = [a, b]
            .into_iter()
            .filter(|r| r.status() == 200)
            .map(|r| async move { r.json::<Value>().await.unwrap() })
            .collect::<futures_util::future::JoinAll<_>>()
            .await;
        assert!(winners.len() <= 1, "round {round}: one code redeemed twice");
        for tokens in winners {
            let access = tokens["access_token"].as_str().unwrap();
            let res = http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
            assert_eq!(res.status(), 401, "{backend:?} round {round}: the access token of a replayed code still works");
            if let Some(refresh) = tokens["refresh_token"].as_str() {
                let refreshed = http()
                    .post(server.url("/token"))
                    .basic_auth(&app.id, app.secret.as_ref())
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(refreshed.status(), 400, "{backend:?} round {round}: the refresh token of a replayed code still works");
            }
        }
    }
}
