//! Step-up through a relying-party library we did not write: the `openidconnect` crate asks for
//! `acr_values` and `max_age` and verifies each ID token (signature, issuer, audience, nonce);
//! the authenticator app's codes come from an independent TOTP implementation (Python's pyotp,
//! reading the `otpauth://` URI sesame made), not from the library sesame uses. Time moves on a
//! `ManualClock`, so "too old" is decided without sleeping.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata};
use openidconnect::{AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse};
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, ManualClock, SystemClock};
use sesame::mfa::Mfa;
use sesame::oauth::acr::ACR_MFA;

use crate::support::harness::{environment, Need, Tests};
use crate::support::sso::{add_user, enter_code, follow_to_callback, location, password_step, query_param, Browser};
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend_needing(&[Need::Python], "a_relying_party_steps_up_to_a_fresh_second_factor_with_acr_values_and_max_age", a_relying_party_steps_up_to_a_fresh_second_factor_with_acr_values_and_max_age);
}

/// The code an authenticator app shows at `at` for `otpauth_uri`, computed by pyotp.
fn pyotp_code(otpauth_uri: &str, at: i64) -> String {
    let python = environment().python.clone().expect("declared Need::Python");
    let out = Command::new(python)
        .args(["-c", "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))", otpauth_uri, &at.to_string()])
        .output()
        .expect("run python");
    assert!(out.status.success(), "pyotp: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

struct Request {
    url: String,
    nonce: Nonce,
    verifier: openidconnect::PkceCodeVerifier,
}

async fn a_relying_party_steps_up_to_a_fresh_second_factor_with_acr_values_and_max_age(backend: Backend) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with_clock(backend, clock.clone(), |_| {}).await;
    add_user(&server, "alice").await;
    let alice = server.state.durable.user_by_username("alice").await.unwrap().unwrap();
    let (app, _) = Mfa::of(&server.state).provision_totp(&alice, Some("Phone"), "test", server.state.now()).await.unwrap();
    let mut spec = NewClient::new("Payroll");
    spec.redirect_uris = vec!["http://127.0.0.1:9/payroll/callback".into()];
    spec.first_party = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http()).await.expect("discovery");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(created.client.id.clone()), Some(ClientSecret::new(created.client_secret.clone().unwrap())))
        .set_redirect_uri(RedirectUrl::new(spec.redirect_uris[0].clone()).unwrap());
    let browser = Browser::new();

    // The relying party's authorization request, asking for a second factor within `max_age`.
    let ask_for_mfa = |client: &CoreClient<_, _, _, _, _, _>, max_age: u64| {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _csrf, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_auth_context_value(AuthenticationContextClass::new(ACR_MFA.into()))
            .set_max_age(Duration::from_secs(max_age))
            .set_pkce_challenge(challenge)
            .url();
        Request { url: url.to_string(), nonce, verifier }
    };

    // The callback's code redeemed by the library; the ID token's verified claims.
    let redeem = |callback: String, request: Request| {
        let client = client.clone();
        async move {
            let code = query_param(&callback, "code").unwrap_or_else(|| panic!("no code: {callback}"));
            let tokens = client.exchange_code(AuthorizationCode::new(code)).unwrap().set_pkce_verifier(request.verifier).request_async(&http()).await.expect("token exchange");
            let claims: CoreIdTokenClaims = tokens.id_token().expect("an ID token").claims(&client.id_token_verifier(), &request.nonce).expect("the ID token verifies").clone();
            claims
        }
    };
    let amr = |claims: &CoreIdTokenClaims| -> Vec<String> { claims.auth_method_refs().map(|v| v.iter().map(|m| m.to_string()).collect()).unwrap_or_default() };

    // t0: password, then the code pyotp computes.
    let t0 = clock.now();
    let request = ask_for_mfa(&client, 300);
    let next = password_step(&browser, &server, &request.url, "alice").await;
    assert!(next.contains("/login/factor?req="), "{backend:?}: the second step is asked: {next}");
    let res = enter_code(&browser, &server, &next, &pyotp_code(&app.otpauth_uri, t0)).await;
    assert_eq!(res.status(), 303, "pyotp's code is accepted");
    let callback = follow_to_callback(&browser, &server, crate::support::sso::absolute(&server, &location(&res))).await;
    let claims = redeem(callback, request).await;
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    let methods = amr(&claims);
    for m in ["pwd", "otp", "mfa"] {
        assert!(methods.iter().any(|x| x == m), "{m} in {methods:?}");
    }
    assert_eq!(claims.auth_time().unwrap().timestamp(), t0);

    // Two minutes on: the sign-in and its factor are fresh enough for max_age=300, no prompt.
    clock.advance(120);
    let request = ask_for_mfa(&client, 300);
    let res = browser.get(&request.url).await;
    let callback = location(&res);
    assert!(callback.starts_with(&spec.redirect_uris[0]), "no interaction inside max_age: {callback}");
    let claims = redeem(callback, request).await;
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    assert_eq!(claims.auth_time().unwrap().timestamp(), t0);

    // Ten minutes on: max_age=300 is exceeded, so the password and a fresh code are asked again;
    // the code of ten minutes ago is refused.
    clock.advance(480);
    let t1 = clock.now();
    let request = ask_for_mfa(&client, 300);
    let next = password_step(&browser, &server, &request.url, "alice").await;
    assert!(next.contains("/login/factor?req="), "{backend:?}: a fresh second factor is asked: {next}");
    let stale = enter_code(&browser, &server, &next, &pyotp_code(&app.otpauth_uri, t0)).await;
    assert_eq!(stale.status(), 401, "an old code is refused");
    let res = enter_code(&browser, &server, &next, &pyotp_code(&app.otpauth_uri, t1)).await;
    assert_eq!(res.status(), 303);
    let callback = follow_to_callback(&browser, &server, crate::support::sso::absolute(&server, &location(&res))).await;
    let claims = redeem(callback, request).await;
    assert_eq!(claims.auth_time().unwrap().timestamp(), t1, "the step-up is a new authentication");
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some(ACR_MFA));
    server.stop().await;
}
