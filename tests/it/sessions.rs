//! The SSO session registry: sessions listed with the clients that got tokens in them, and ended
//! from every place that can end one (the CLI, the admin API, the account page, disabling a
//! user). An ended session is over on the server at once, however it was ended (the CLI may not
//! reach the server's ephemeral store), and the refresh tokens issued in it are refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::store::AuthMethod;

use crate::cli::Cli;
use crate::support::harness::Tests;
use crate::support::machine::{add_machine, Machine};
use crate::support::sso::*;
use crate::support::tokens::refresh;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("the_cli_lists_a_session_with_its_clients_and_ends_it", the_cli_lists_a_session_with_its_clients_and_ends_it)
        .each_backend("disabling_a_user_ends_their_sessions_for_good", disabling_a_user_ends_their_sessions_for_good)
        .each_backend("the_account_page_ends_another_session_of_its_user", the_account_page_ends_another_session_of_its_user)
        .each_backend("a_user_cannot_end_another_users_session", a_user_cannot_end_another_users_session)
        .each_backend("the_admin_api_lists_and_ends_sessions_for_admins_only", the_admin_api_lists_and_ends_sessions_for_admins_only)
        .each_backend("logout_revokes_the_grants_of_its_session_and_its_unredeemed_codes", logout_revokes_the_grants_of_its_session_and_its_unredeemed_codes);
}

/// A first-party client allowed refresh tokens.
async fn app_with_refresh(server: &TestServer, name: &str) -> TestClient {
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![format!("http://127.0.0.1:9/{}/callback", name.to_lowercase())];
    spec.post_logout_redirect_uris = vec![format!("http://127.0.0.1:9/{}/bye", name.to_lowercase())];
    spec.first_party = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() }
}

struct Tokens {
    refresh: String,
    id_token: String,
    /// The session the tokens were issued in (the ID token's `sid`).
    sid: String,
}

/// The claims of a JWT, unverified (the tests read what sesame wrote).
fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// Tokens for `app`, signing in as `username` when the browser has no session yet.
async fn tokens_for(browser: &Browser, server: &TestServer, app: &TestClient, username: &str) -> Tokens {
    let p = pkce();
    let authorize = authorize_url(server, app, &p, &[]);
    let next = absolute(server, &location(&browser.get(&authorize).await));
    let callback = if next.contains("/login?req=") { sign_in(browser, server, &authorize, username).await } else { follow_to_callback(browser, server, next).await };
    let res = redeem(server, app, &query_param(&callback, "code").expect("a code"), &p.verifier).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap().to_string();
    Tokens { refresh: body["refresh_token"].as_str().expect("a refresh token").into(), sid: claims(&id_token)["sid"].as_str().unwrap().into(), id_token }
}

/// Where the browser's next authorize request for `app` is sent: the login page when it has no
/// session, the client's callback when it has one.
async fn next_authorize(browser: &Browser, server: &TestServer, app: &TestClient) -> String {
    let res = browser.get(&authorize_url(server, app, &pkce(), &[])).await;
    assert_eq!(res.status(), 303);
    location(&res)
}

/// A JSON array of strings, sorted (clients recorded within one second have no order).
fn sorted(list: &Value) -> Vec<String> {
    let mut items: Vec<String> = list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    items.sort();
    items
}

fn cli_for(server: &TestServer) -> Cli {
    Cli::on(&server.state.config.database_url, server.state.config.kek.as_deref())
}

async fn the_cli_lists_a_session_with_its_clients_and_ends_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let (wiki, mail) = (app_with_refresh(&server, "Wiki").await, app_with_refresh(&server, "Mail").await);
    let (laptop, phone) = (Browser::new(), Browser::new());
    let on_laptop = tokens_for(&laptop, &server, &wiki, "alice").await;
    let also_on_laptop = tokens_for(&laptop, &server, &mail, "alice").await;
    assert_eq!(on_laptop.sid, also_on_laptop.sid, "single sign-on: one session");
    let on_phone = tokens_for(&phone, &server, &wiki, "alice").await;
    assert_ne!(on_phone.sid, on_laptop.sid);

    let cli = cli_for(&server);
    let listed = cli.json(&["session", "list", "--user", "alice"], None);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{backend:?}: {listed}");
    let laptop_row = sessions.iter().find(|s| s["id"] == on_laptop.sid.as_str()).expect("the laptop's session is listed");
    assert_eq!(sorted(&laptop_row["clients"]), sorted(&serde_json::json!([wiki.id, mail.id])), "{backend:?}: both clients, each once");
    assert_eq!(laptop_row["username"], "alice");
    assert_eq!(laptop_row["ip"], "127.0.0.1");
    assert!(laptop_row.get("key_hash").is_none(), "what names the live session is not shown");
    let phone_row = sessions.iter().find(|s| s["id"] == on_phone.sid.as_str()).unwrap();
    assert_eq!(phone_row["clients"], serde_json::json!([wiki.id]));
    assert_eq!(cli.json(&["session", "list"], None)["sessions"].as_array().unwrap().len(), 2, "everyone's");

    let ended = cli.json(&["session", "end", &on_laptop.sid], None);
    assert_eq!(ended["sessions"][0]["sid"], on_laptop.sid.as_str(), "{ended}");
    assert_eq!(sorted(&ended["sessions"][0]["clients"]), sorted(&serde_json::json!([wiki.id, mail.id])));
    assert_eq!(ended["sessions"][0]["revoked_families"], 2);

    // The server did not hear from the CLI (on SQLite it cannot reach the in-process store), yet
    // the laptop is signed out at once, and the grants of its session are gone.
    assert!(next_authorize(&laptop, &server, &wiki).await.contains("/login?req="), "{backend:?}: the ended session still signs in");
    for (app, token) in [(&wiki, &on_laptop.refresh), (&mail, &also_on_laptop.refresh)] {
        let res = refresh(&server, app, token, None).await;
        assert_eq!(res.status(), 400, "{backend:?}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }
    // The other session of the same user is untouched.
    assert_eq!(refresh(&server, &wiki, &on_phone.refresh, None).await.status(), 200, "{backend:?}: the phone's grant");
    assert!(next_authorize(&phone, &server, &wiki).await.starts_with(&wiki.redirect_uri), "{backend:?}: the phone is still signed in");
    let listed = cli.json(&["session", "list", "--user", "alice"], None);
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");

    let err = cli.fails(&["session", "end", &on_laptop.sid], None, 1);
    assert!(err.contains("not found"), "ending it twice: {err}");
    let err = cli.fails(&["session", "list", "--user", "nobody"], None, 1);
    assert!(err.contains("not found"), "{err}");
    cli.fails(&["session", "end"], None, 2);
    let ended = cli.json(&["session", "end", "--user", "alice"], None);
    assert_eq!(ended["sessions"].as_array().unwrap().len(), 1, "{ended}");
    assert!(next_authorize(&phone, &server, &wiki).await.contains("/login?req="), "{backend:?}");
    let audit = server.state.durable.recent_audit(Some(&server.state.durable.user_by_username("alice").await.unwrap().unwrap().sub), 10).await.unwrap();
    let ends: Vec<_> = audit.iter().filter(|e| e.kind == "session.end").collect();
    assert_eq!(ends.len(), 2, "{backend:?}: {audit:?}");
    assert!(ends.iter().all(|e| e.caller.as_deref() == Some("cli") && e.reason.as_deref() == Some("admin")));
}

async fn disabling_a_user_ends_their_sessions_for_good(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let wiki = app_with_refresh(&server, "Wiki").await;
    let browser = Browser::new();
    let tokens = tokens_for(&browser, &server, &wiki, "alice").await;

    let cli = cli_for(&server);
    let disabled = cli.json(&["user", "disable", "alice"], None);
    assert_eq!(disabled["sessions"][0]["sid"], tokens.sid.as_str(), "{disabled}");
    let row = server.state.durable.sso_session(&tokens.sid).await.unwrap().unwrap();
    assert_eq!(row.end_reason.as_deref(), Some("user_disabled"), "{backend:?}");
    assert!(row.ended_at.is_some());
    let grant = server.state.durable.refresh_token(&sesame::crypto::secrets::hash_secret(&tokens.refresh)).await.unwrap().unwrap();
    assert!(grant.revoked_at.is_some(), "{backend:?}: the refresh token is revoked, not just refused");

    // Enabled again, the user signs in afresh: the old session does not come back.
    assert!(server.state.durable.set_user_disabled("alice", false).await.unwrap());
    assert!(next_authorize(&browser, &server, &wiki).await.contains("/login?req="), "{backend:?}: the session came back");
    assert_eq!(browser.get(&server.url("/account")).await.status(), 401);
    assert_eq!(refresh(&server, &wiki, &tokens.refresh, None).await.status(), 400);
}

/// The ids of the sessions the account page lists, and which one is this browser's.
fn listed_sessions(page: &str) -> (Vec<String>, Option<String>) {
    let mut ids = Vec::new();
    let mut current = None;
    for item in page.split("<li class=\"session\"").skip(1) {
        let start = item.find("data-session-id=\"").unwrap() + "data-session-id=\"".len();
        let id = item[start..start + item[start..].find('"').unwrap()].to_string();
        if item[..item.find('>').unwrap()].contains("id=\"this-session\"") {
            current = Some(id.clone());
        }
        ids.push(id);
    }
    (ids, current)
}

async fn account_page(browser: &Browser, server: &TestServer) -> (u16, String) {
    let res = browser.get(&server.url("/account")).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn the_account_page_ends_another_session_of_its_user(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let wiki = app_with_refresh(&server, "Wiki").await;
    let (first, second) = (Browser::new(), Browser::new());
    let mine = tokens_for(&first, &server, &wiki, "alice").await;
    let other = tokens_for(&second, &server, &wiki, "alice").await;

    let (status, page) = account_page(&first, &server).await;
    assert_eq!(status, 200, "{page}");
    let (ids, current) = listed_sessions(&page);
    assert_eq!(ids.len(), 2, "{backend:?}: both sessions listed: {page}");
    assert!(ids.contains(&other.sid));
    assert_eq!(current.as_deref(), Some(mine.sid.as_str()), "this session is marked");
    assert!(page.contains("this session") && page.contains("Wiki"), "{page}");

    let csrf = hidden(&page, "csrf");
    // Without this session's CSRF value, nothing ends.
    let res = first.post_form(&server.url("/account/sessions/end"), &[("csrf", "forged"), ("session_id", &other.sid)]).await;
    assert_ne!(res.status(), 303);
    assert_eq!(account_page(&second, &server).await.0, 200, "{backend:?}: a forged form ended a session");

    let res = first.post_form(&server.url("/account/sessions/end"), &[("csrf", &csrf), ("session_id", &other.sid)]).await;
    assert_eq!(res.status(), 303, "{backend:?}");
    assert_eq!(location(&res), "/account");
    assert_eq!(account_page(&second, &server).await.0, 401, "{backend:?}: the other browser is signed out");
    assert_eq!(refresh(&server, &wiki, &other.refresh, None).await.status(), 400, "{backend:?}: its grant is revoked");
    let (status, page) = account_page(&first, &server).await;
    assert_eq!(status, 200);
    assert_eq!(listed_sessions(&page).0, vec![mine.sid.clone()], "{backend:?}");
    assert_eq!(server.state.durable.sso_session(&other.sid).await.unwrap().unwrap().end_reason.as_deref(), Some("ended_by_user"));

    // Signing out of this one from the list.
    let res = first.post_form(&server.url("/account/sign-out"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(account_page(&first, &server).await.0, 401);
    assert_eq!(server.state.durable.sso_session(&mine.sid).await.unwrap().unwrap().end_reason.as_deref(), Some("sign_out"));
    assert_eq!(refresh(&server, &wiki, &mine.refresh, None).await.status(), 400, "{backend:?}");
}

async fn a_user_cannot_end_another_users_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    add_user(&server, "bob").await;
    let wiki = app_with_refresh(&server, "Wiki").await;
    let (alices, bobs) = (Browser::new(), Browser::new());
    tokens_for(&alices, &server, &wiki, "alice").await;
    let bob = tokens_for(&bobs, &server, &wiki, "bob").await;

    let (_, page) = account_page(&alices, &server).await;
    assert_eq!(listed_sessions(&page).0.len(), 1, "{backend:?}: alice sees only her own session");
    assert!(!page.contains(&bob.sid));
    let csrf = hidden(&page, "csrf");
    for target in [bob.sid.as_str(), "no-such-session"] {
        let res = alices.post_form(&server.url("/account/sessions/end"), &[("csrf", &csrf), ("session_id", target)]).await;
        assert_eq!(res.status(), 404, "{backend:?}: {target}");
        assert!(res.text().await.unwrap().contains("Session not found"));
    }
    assert_eq!(account_page(&bobs, &server).await.0, 200, "{backend:?}: bob was signed out by alice");
    assert_eq!(refresh(&server, &wiki, &bob.refresh, None).await.status(), 200);
    assert!(server.state.durable.sso_session(&bob.sid).await.unwrap().unwrap().ended_at.is_none());
}

async fn the_admin_api_lists_and_ends_sessions_for_admins_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let wiki = app_with_refresh(&server, "Wiki").await;
    let (laptop, phone) = (Browser::new(), Browser::new());
    let on_laptop = tokens_for(&laptop, &server, &wiki, "alice").await;
    let on_phone = tokens_for(&phone, &server, &wiki, "alice").await;
    let root = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let plain = add_machine(&server, "Plain", "reports:read", AuthMethod::ClientSecretBasic).await;
    let token_of = |m: &Machine| http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&[("grant_type", "client_credentials")]).send();
    let admin = token_of(&root).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let not_admin = token_of(&plain).await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let end_one = server.url(&format!("/admin/sessions/{}/end", on_laptop.sid));

    assert_eq!(http().get(server.url("/admin/sessions?user=alice")).send().await.unwrap().status(), 401);
    assert_eq!(http().get(server.url("/admin/sessions?user=alice")).bearer_auth(&not_admin).send().await.unwrap().status(), 403);
    assert_eq!(http().post(&end_one).send().await.unwrap().status(), 401);
    let res = http().post(&end_one).bearer_auth(&not_admin).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "insufficient_scope");
    assert_eq!(http().post(server.url("/admin/users/alice/sessions/end")).bearer_auth(&not_admin).send().await.unwrap().status(), 403);
    assert!(next_authorize(&laptop, &server, &wiki).await.starts_with(&wiki.redirect_uri), "{backend:?}: a refused request ended the session");

    let listed: Value = http().get(server.url("/admin/sessions?user=alice")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2, "{listed}");
    assert!(listed["sessions"].as_array().unwrap().iter().all(|s| s["clients"] == serde_json::json!([wiki.id])), "{listed}");

    let res = http().post(&end_one).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 200, "{backend:?}");
    assert_eq!(res.json::<Value>().await.unwrap()["sessions"][0]["sid"], on_laptop.sid.as_str());
    assert!(next_authorize(&laptop, &server, &wiki).await.contains("/login?req="), "{backend:?}");
    assert_eq!(refresh(&server, &wiki, &on_laptop.refresh, None).await.status(), 400);
    let again = http().post(&end_one).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(again.status(), 404, "{backend:?}: an ended session is not found");
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "not_found");

    let res = http().post(server.url("/admin/users/alice/sessions/end")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["sessions"][0]["sid"], on_phone.sid.as_str());
    assert!(next_authorize(&phone, &server, &wiki).await.contains("/login?req="), "{backend:?}");
    assert_eq!(http().post(server.url("/admin/users/nobody/sessions/end")).bearer_auth(&admin).send().await.unwrap().status(), 404);
    let audit = server.state.durable.recent_audit(Some(&server.state.durable.user_by_username("alice").await.unwrap().unwrap().sub), 10).await.unwrap();
    assert!(audit.iter().any(|e| e.kind == "session.end" && e.caller.as_deref() == Some(root.id.as_str())), "{backend:?}: the admin client is the audited caller: {audit:?}");
}

async fn logout_revokes_the_grants_of_its_session_and_its_unredeemed_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let (wiki, mail) = (app_with_refresh(&server, "Wiki").await, app_with_refresh(&server, "Mail").await);
    let browser = Browser::new();
    let tokens = tokens_for(&browser, &server, &wiki, "alice").await;
    // A code issued in the session, not yet redeemed when the session ends.
    let p = pkce();
    let callback = follow_to_callback(&browser, &server, authorize_url(&server, &mail, &p, &[])).await;
    let code = query_param(&callback, "code").unwrap();

    let url = format!("{}?id_token_hint={}", server.url("/logout"), tokens.id_token);
    assert_eq!(browser.get(&url).await.status(), 200);
    let row = server.state.durable.sso_session(&tokens.sid).await.unwrap().unwrap();
    assert_eq!(row.end_reason.as_deref(), Some("logout"), "{backend:?}");
    assert_eq!(refresh(&server, &wiki, &tokens.refresh, None).await.status(), 400, "{backend:?}: the grant outlived its session");
    let res = redeem(&server, &mail, &code, &p.verifier).await;
    assert_eq!(res.status(), 400, "{backend:?}: a code of an ended session was redeemed");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
}
