//! Signing in through an upstream identity provider, at the HTTP level, against a small OpenID
//! Connect provider of our own (`support::fake_upstream`) that can spoil its answers on request:
//! accounts (created, linked, refused), groups and roles, the login page, and every tampered
//! response refused with a page, never a 500.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};
use sesame::config::Config;

use crate::support::fake_upstream::{FakeUpstream, Tamper};
use crate::support::harness::Tests;
use crate::support::sso::{absolute, add_user, follow_to_callback, location, pkce, query_param, redeem, Browser, Pkce, TestClient};
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_first_sign_in_creates_the_user_and_tokens_carry_the_groups", a_first_sign_in_creates_the_user_and_tokens_carry_the_groups)
        .each_backend("existing_provisioning_refuses_a_person_without_an_account", existing_provisioning_refuses_a_person_without_an_account)
        .each_backend("an_email_links_to_a_local_user_only_when_verified_and_configured", an_email_links_to_a_local_user_only_when_verified_and_configured)
        .each_backend("a_callback_is_taken_once_and_only_by_the_browser_that_left", a_callback_is_taken_once_and_only_by_the_browser_that_left)
        .test("an_email_domain_outside_the_allowed_ones_is_refused", an_email_domain_outside_the_allowed_ones_is_refused)
        .test("tampered_upstream_answers_are_refused_with_a_page", tampered_upstream_answers_are_refused_with_a_page)
        .test("the_login_page_offers_providers_and_can_hide_the_password_form", the_login_page_offers_providers_and_can_hide_the_password_form)
        .test("upstream_mfa_counts_only_from_a_trusted_provider", upstream_mfa_counts_only_from_a_trusted_provider)
        .test("a_plain_oauth2_provider_signs_in_through_its_userinfo_url", a_plain_oauth2_provider_signs_in_through_its_userinfo_url);
}

/// A sesame whose `[[upstream]]` (and `[login]`, `[mfa]`) come from `toml`.
async fn sesame_with(backend: Backend, toml: &str) -> TestServer {
    let parsed = Config::from_toml(toml).unwrap();
    TestServer::start_with(backend, move |c| {
        c.upstream = parsed.upstream;
        c.login.password_form = parsed.login.password_form;
        c.mfa = parsed.mfa;
    })
    .await
}

/// A first-party app (no consent page) that may ask for `groups`.
async fn app(server: &TestServer) -> TestClient {
    let redirect_uri = "http://127.0.0.1:9/app/callback".to_string();
    let mut spec = NewClient::new("App");
    spec.redirect_uris = vec![redirect_uri.clone()];
    spec.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    spec.scope = Some("openid profile email groups".into());
    spec.first_party = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    TestClient { id: created.client.id, secret: created.client_secret, redirect_uri }
}

fn authorize(server: &TestServer, client: &TestClient, p: &Pkce, extra: &[(&str, &str)]) -> String {
    crate::support::sso::authorize_url(server, client, p, &[&[("scope", "openid profile email groups"), ("nonce", "n-1")], extra].concat())
}

/// From the authorize URL to the provider and back: sesame's answer to the callback.
async fn through_provider(browser: &Browser, server: &TestServer, authorize: &str, provider: &str) -> reqwest::Response {
    let callback = to_callback(browser, server, authorize, provider).await;
    browser.get(&callback).await
}

/// From the authorize URL through the login page's "Continue with" link and the provider's
/// authorization endpoint: the callback URL the provider sends the browser to (not yet followed).
async fn to_callback(browser: &Browser, server: &TestServer, authorize: &str, provider: &str) -> String {
    let res = browser.get(authorize).await;
    let login = absolute(server, &location(&res));
    let page = browser.get(&login).await.text().await.unwrap();
    let start = format!("/login/upstream/{provider}?req=");
    let at = page.find(&start).unwrap_or_else(|| panic!("no link to {provider} on {page}"));
    let href = &page[at..at + page[at..].find('"').unwrap()];
    assert!(page[at..].contains("Continue with Fake Corp"), "{page}");
    let res = browser.get(&server.url(href)).await;
    assert_eq!(res.status(), 303, "leaving for the provider: {}", res.text().await.unwrap());
    let res = browser.get(&location(&res)).await;
    assert_eq!(res.status(), 303, "the provider's authorization endpoint: {}", res.text().await.unwrap());
    location(&res)
}

/// Follows a successful callback to the app and redeems the code: the token response.
async fn finish(browser: &Browser, server: &TestServer, client: &TestClient, p: &Pkce, callback_answer: reqwest::Response) -> Value {
    assert_eq!(callback_answer.status(), 303, "the callback: {}", callback_answer.text().await.unwrap());
    let at_app = follow_to_callback(browser, server, absolute(server, &location(&callback_answer))).await;
    assert!(at_app.starts_with(&client.redirect_uri), "{at_app}");
    let code = query_param(&at_app, "code").unwrap_or_else(|| panic!("no code: {at_app}"));
    let res = redeem(server, client, &code, &p.verifier).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn jwt_claims(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

async fn page_message(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn audit_reasons(server: &TestServer) -> Vec<String> {
    let events = server.state.durable.recent_audit(None, 100).await.unwrap();
    events.into_iter().filter(|e| e.kind == "upstream.sign_in").map(|e| e.reason.unwrap_or_else(|| e.result.clone())).collect()
}

fn ada(groups: &[&str]) -> Value {
    json!({"sub": "u-ada", "preferred_username": "ada", "email": "ada@corp.example", "email_verified": true, "name": "Ada Lovelace", "groups": groups, "amr": ["pwd"]})
}

async fn a_first_sign_in_creates_the_user_and_tokens_carry_the_groups(backend: Backend) {
    let fake = FakeUpstream::start().await;
    let server = sesame_with(backend, &fake.config_toml("fake", "[upstream.groups_to_roles]\nsesame-admins = \"admin\"\n")).await;
    let client = app(&server).await;
    fake.sign_in_as(ada(&["eng", "sesame-admins"]));

    let browser = Browser::new();
    let p = pkce();
    let answer = through_provider(&browser, &server, &authorize(&server, &client, &p, &[("login_hint", "ada@corp.example")]), "fake").await;
    // What sesame asked the provider: PKCE S256, a nonce, its own state, the login hint.
    assert_eq!(fake.last_authorize("code_challenge_method").as_deref(), Some("S256"));
    assert!(fake.last_authorize("nonce").is_some_and(|n| n.len() >= 16) && fake.last_authorize("state").is_some_and(|s| s.len() >= 16));
    assert_eq!(fake.last_authorize("login_hint").as_deref(), Some("ada@corp.example"));
    assert!(fake.last_authorize("redirect_uri").unwrap().ends_with("/login/upstream/fake/callback"));
    let tokens = finish(&browser, &server, &client, &p, answer).await;

    let user = server.state.durable.user_by_username("ada").await.unwrap().expect("created at the first sign-in");
    assert_eq!((user.email.as_deref(), user.name.as_deref()), (Some("ada@corp.example"), Some("Ada Lovelace")));
    let link = server.state.durable.upstream_link("fake", "u-ada").await.unwrap().expect("linked by the upstream subject");
    assert_eq!(link.sub, user.sub);
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], user.sub.as_str());
    assert_eq!(id["groups"], json!(["eng", "sesame-admins"]));
    assert_eq!(id["amr"], json!(["fed"]), "{id}");
    assert_eq!(id["nonce"], "n-1");
    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["groups"], json!(["eng", "sesame-admins"]));
    let info: Value = crate::support::http().get(server.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["groups"], json!(["eng", "sesame-admins"]));
    assert_eq!(info["preferred_username"], "ada");
    assert_eq!(server.state.durable.user_roles(&user.sub).await.unwrap(), ["admin"], "the group grants the admin role");
    assert!(!server.state.passwords.verify("", Some(&user.password_hash)).await.unwrap(), "no password signs in as a created user");

    // The next sign-in: the same user (found by the link), groups refreshed, the role gone with its group.
    fake.sign_in_as(json!({"sub": "u-ada", "preferred_username": "ada-renamed", "email": "ada@elsewhere.example", "email_verified": true, "groups": ["eng"]}));
    let browser = Browser::new();
    let p = pkce();
    let answer = through_provider(&browser, &server, &authorize(&server, &client, &p, &[]), "fake").await;
    let tokens = finish(&browser, &server, &client, &p, answer).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], user.sub.as_str(), "the subject is the link, not the username or email");
    assert_eq!(id["groups"], json!(["eng"]));
    assert!(server.state.durable.user_roles(&user.sub).await.unwrap().is_empty(), "the admin role left with the group");
    assert_eq!(server.state.durable.users().await.unwrap().len(), 1);
    assert_eq!(audit_reasons(&server).await, ["ok", "ok"]);
    let metrics = crate::support::http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sesame_upstream_sign_ins_total{provider=\"fake\",result=\"ok\"} 2"), "{metrics}");
}

async fn existing_provisioning_refuses_a_person_without_an_account(backend: Backend) {
    let fake = FakeUpstream::start().await;
    let server = sesame_with(backend, &fake.config_toml("fake", "provisioning = \"existing\"\n")).await;
    let client = app(&server).await;
    fake.sign_in_as(ada(&[]));
    let (status, page) = page_message(through_provider(&Browser::new(), &server, &authorize(&server, &client, &pkce(), &[]), "fake").await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("You have no account here"), "{page}");
    assert!(server.state.durable.users().await.unwrap().is_empty());
    assert_eq!(audit_reasons(&server).await, ["no_account"]);
}

async fn an_email_links_to_a_local_user_only_when_verified_and_configured(backend: Backend) {
    let fake = FakeUpstream::start().await;
    let alice = |verified: bool| json!({"sub": "u-alice", "preferred_username": "alice", "email": "Alice@Example.com", "email_verified": verified});

    // Not configured: a verified email does not link; the username is taken, so no account.
    let server_a = sesame_with(backend, &fake.config_toml("fake", "")).await;
    let local_a = add_user(&server_a, "alice").await;
    let client = app(&server_a).await;
    fake.sign_in_as(alice(true));
    let (status, page) = page_message(through_provider(&Browser::new(), &server_a, &authorize(&server_a, &client, &pkce(), &[]), "fake").await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("An account named alice exists here already"), "{page}");
    assert_eq!(server_a.state.durable.upstream_link("fake", "u-alice").await.unwrap(), None);
    assert_eq!(audit_reasons(&server_a).await, ["username_taken"]);
    assert_eq!(server_a.state.durable.user_by_username("alice").await.unwrap().unwrap().sub, local_a);

    // Configured: an unverified email does not link...
    let server_b = sesame_with(backend, &fake.config_toml("fake", "link_by_verified_email = true\n")).await;
    let local_b = add_user(&server_b, "alice").await;
    let client = app(&server_b).await;
    fake.sign_in_as(alice(false));
    let (status, page) = page_message(through_provider(&Browser::new(), &server_b, &authorize(&server_b, &client, &pkce(), &[]), "fake").await).await;
    assert_eq!(status, 403, "{page}");
    assert_eq!(server_b.state.durable.upstream_link("fake", "u-alice").await.unwrap(), None, "an unverified email never links");

    // ...a verified one does, to that user.
    fake.sign_in_as(alice(true));
    let browser = Browser::new();
    let p = pkce();
    let answer = through_provider(&browser, &server_b, &authorize(&server_b, &client, &p, &[]), "fake").await;
    let tokens = finish(&browser, &server_b, &client, &p, answer).await;
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"], local_b.as_str());
    assert_eq!(server_b.state.durable.upstream_link("fake", "u-alice").await.unwrap().unwrap().sub, local_b);
    assert_eq!(server_b.state.durable.users().await.unwrap().len(), 1, "no second account");
    assert_eq!(audit_reasons(&server_b).await, ["username_taken", "ok"]);

    // Another upstream person with the same verified address cannot take the linked account.
    fake.sign_in_as(json!({"sub": "u-impostor", "preferred_username": "alice2", "email": "alice@example.com", "email_verified": true}));
    let (status, page) = page_message(through_provider(&Browser::new(), &server_b, &authorize(&server_b, &client, &pkce(), &[]), "fake").await).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("linked to another Fake Corp identity"), "{page}");
}

async fn a_callback_is_taken_once_and_only_by_the_browser_that_left(backend: Backend) {
    let fake = FakeUpstream::start().await;
    let server = sesame_with(backend, &fake.config_toml("fake", "")).await;
    let client = app(&server).await;
    fake.sign_in_as(ada(&[]));

    // Another browser presenting the callback gets nothing, and spends it.
    let victim = Browser::new();
    let callback = to_callback(&victim, &server, &authorize(&server, &client, &pkce(), &[]), "fake").await;
    let (status, page) = page_message(Browser::new().get(&callback).await).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Start again"), "{page}");
    let (status, _) = page_message(victim.get(&callback).await).await;
    assert_eq!(status, 400, "a callback presented once is spent");

    // A callback that worked cannot be replayed, not even by the same browser.
    let browser = Browser::new();
    let p = pkce();
    let callback = to_callback(&browser, &server, &authorize(&server, &client, &p, &[]), "fake").await;
    let first = browser.get(&callback).await;
    finish(&browser, &server, &client, &p, first).await;
    let (status, _) = page_message(browser.get(&callback).await).await;
    assert_eq!(status, 400);
    assert_eq!(audit_reasons(&server).await, ["other_browser", "unknown_state", "ok", "unknown_state"]);
    assert_eq!(server.state.durable.users().await.unwrap().len(), 1);
}

async fn an_email_domain_outside_the_allowed_ones_is_refused() {
    let fake = FakeUpstream::start().await;
    let server = sesame_with(Backend::Embedded, &fake.config_toml("fake", "allowed_email_domains = [\"corp.example\"]\n")).await;
    let client = app(&server).await;
    fake.sign_in_as(json!({"sub": "u-eve", "preferred_username": "eve", "email": "eve@evil.example", "email_verified": true}));
    let (status, page) = page_message(through_provider(&Browser::new(), &server, &authorize(&server, &client, &pkce(), &[]), "fake").await).await;
    assert_eq!(status, 403);
    assert!(page.contains("Accounts from your email domain may not sign in here."), "{page}");
    fake.sign_in_as(json!({"sub": "u-eve", "preferred_username": "eve", "email": "eve@corp.example", "email_verified": false}));
    let (status, _) = page_message(through_provider(&Browser::new(), &server, &authorize(&server, &client, &pkce(), &[]), "fake").await).await;
    assert_eq!(status, 403, "an allowed domain on an unverified address is not enough");
    assert!(server.state.durable.users().await.unwrap().is_empty());
    assert_eq!(audit_reasons(&server).await, ["email_domain_not_allowed", "email_not_verified"]);
}

async fn tampered_upstream_answers_are_refused_with_a_page() {
    let fake = FakeUpstream::start().await;
    let server = sesame_with(Backend::Embedded, &fake.config_toml("fake", "")).await;
    let client = app(&server).await;
    fake.sign_in_as(ada(&[]));
    let cases = [
        (Tamper::WrongNonce, "id_token_nonce"),
        (Tamper::WrongIssuer, "id_token_issuer"),
        (Tamper::WrongAudience, "id_token_audience"),
        (Tamper::Expired, "id_token_expired"),
        (Tamper::UnknownKey, "id_token_signature"),
        (Tamper::WrongIssParameter, "wrong_issuer"),
    ];
    for (tamper, _) in cases {
        fake.tamper(tamper);
        let (status, page) = page_message(through_provider(&Browser::new(), &server, &authorize(&server, &client, &pkce(), &[]), "fake").await).await;
        assert_eq!(status, 502, "{tamper:?}: {page}");
        assert!(page.contains("The answer from Fake Corp could not be accepted"), "{tamper:?}: {page}");
        assert!(server.state.durable.users().await.unwrap().is_empty(), "{tamper:?} signed someone in");
    }
    let expected: Vec<&str> = cases.iter().map(|(_, reason)| *reason).collect();
    assert_eq!(audit_reasons(&server).await, expected);
    // The same provider, untampered, signs in: the refusals were the tampering's doing.
    fake.tamper(Tamper::None);
    let browser = Browser::new();
    let p = pkce();
    let answer = through_provider(&browser, &server, &authorize(&server, &client, &p, &[]), "fake").await;
    finish(&browser, &server, &client, &p, answer).await;
    // A provider's error answer is shown by its code, and a garbled callback is refused too.
    let browser = Browser::new();
    let callback = to_callback(&browser, &server, &authorize(&server, &client, &pkce(), &[]), "fake").await;
    let denied = crate::support::sso::set_param(&crate::support::sso::set_param(&callback, "code", ""), "error", "access_denied");
    let (status, page) = page_message(browser.get(&denied).await).await;
    assert_eq!(status, 403);
    assert!(page.contains("did not sign you in (access_denied)"), "{page}");
    let (status, _) = page_message(browser.get(&server.url("/login/upstream/fake/callback?state=a&state=b")).await).await;
    assert_eq!(status, 502);
}

async fn the_login_page_offers_providers_and_can_hide_the_password_form() {
    let fake = FakeUpstream::start().await;
    // Both ways in, and an `idp` hint that skips the page.
    let server = sesame_with(Backend::Embedded, &fake.config_toml("fake", "")).await;
    let client = app(&server).await;
    let browser = Browser::new();
    let res = browser.get(&authorize(&server, &client, &pkce(), &[])).await;
    let page = browser.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    assert!(page.contains(">Continue with Fake Corp</a>") && page.contains("name=\"password\""), "{page}");
    let res = browser.get(&authorize(&server, &client, &pkce(), &[("idp", "fake")])).await;
    let res = browser.get(&absolute(&server, &location(&res))).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login/upstream/fake?req="), "{}", location(&res));

    // The password form off, with one provider: straight there; passwords refused.
    let server = sesame_with(Backend::Embedded, &format!("[login]\npassword_form = false\n{}", fake.config_toml("fake", ""))).await;
    let client = app(&server).await;
    add_user(&server, "alice").await;
    let browser = Browser::new();
    let res = browser.get(&authorize(&server, &client, &pkce(), &[])).await;
    let login = absolute(&server, &location(&res));
    let res = browser.get(&login).await;
    assert_eq!(res.status(), 303, "one provider, no password form: no page");
    assert!(location(&res).starts_with("/login/upstream/fake?req="));
    let req = query_param(&login, "req").unwrap();
    let posted = browser.post_form(&server.url("/login"), &[("req", &req), ("csrf", "x"), ("username", "alice"), ("password", crate::support::sso::PASSWORD)]).await;
    let (status, page) = page_message(posted).await;
    assert_eq!(status, 400, "no password sign-in");
    assert!(page.contains("Passwords are off"), "{page}");
}

async fn upstream_mfa_counts_only_from_a_trusted_provider() {
    let fake = FakeUpstream::start().await;
    let toml = format!("[mfa]\nrequired = true\n{}{}", fake.config_toml("trusted", "trust_upstream_mfa = true\n"), fake.config_toml("untrusted", ""));
    let server = sesame_with(Backend::Embedded, &toml).await;
    let client = app(&server).await;
    fake.sign_in_as(json!({"sub": "u-ada", "preferred_username": "ada", "amr": ["pwd", "otp", "mfa"]}));

    let browser = Browser::new();
    let p = pkce();
    let answer = through_provider(&browser, &server, &authorize(&server, &client, &p, &[]), "trusted").await;
    let tokens = finish(&browser, &server, &client, &p, answer).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:sesame:acr:mfa", "{id}");
    assert!(id["amr"].as_array().unwrap().iter().any(|m| m == "mfa") && id["amr"][0] == "fed", "{id}");

    // The same claim from a provider not trusted for it: sesame's own rules (set up a factor).
    fake.sign_in_as(json!({"sub": "u-bob", "preferred_username": "bob", "amr": ["pwd", "otp", "mfa"]}));
    let browser = Browser::new();
    let answer = through_provider(&browser, &server, &authorize(&server, &client, &pkce(), &[]), "untrusted").await;
    assert_eq!(answer.status(), 303);
    let res = browser.get(&absolute(&server, &location(&answer))).await;
    assert!(location(&res).starts_with("/login/enrol?req="), "{}", location(&res));
}

async fn a_plain_oauth2_provider_signs_in_through_its_userinfo_url() {
    let fake = FakeUpstream::start().await;
    let i = &fake.issuer;
    let toml = fake.config_toml("fake", "").replace(&format!("issuer = \"{i}\"\n"), &format!("authorization_url = \"{i}/authorize\"\ntoken_url = \"{i}/token\"\nuserinfo_url = \"{i}/userinfo\"\n")).replace("\"openid\", ", "");
    let server = sesame_with(Backend::Embedded, &format!("{toml}[upstream.claims]\nusername = \"login\"\n")).await;
    let client = app(&server).await;
    fake.sign_in_as(json!({"sub": 4242, "login": "octo", "email": "octo@corp.example", "groups": ["ops"]}));
    let browser = Browser::new();
    let p = pkce();
    let answer = through_provider(&browser, &server, &authorize(&server, &client, &p, &[]), "fake").await;
    assert!(fake.last_authorize("nonce").is_none(), "no OpenID Connect here");
    let tokens = finish(&browser, &server, &client, &p, answer).await;
    let user = server.state.durable.user_by_username("octo").await.unwrap().expect("created");
    assert_eq!(user.email, None, "an unverified address is not kept (sesame vouches for the ones it holds)");
    assert_eq!(server.state.durable.upstream_link("fake", "4242").await.unwrap().unwrap().sub, user.sub);
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["groups"], json!(["ops"]));
}
