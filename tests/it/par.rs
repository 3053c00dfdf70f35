//! Pushed authorization requests (RFC 9126): the pushed request is the whole request, its
//! `request_uri` is single-use and its client's alone, and a client (or the server) that
//! requires PAR gets no code without it.

use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::crypto::alg::SigningAlg;

use crate::support::dpop::DpopKey;
use crate::support::harness::Tests;
use crate::support::machine::error_code;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("par_pushed_request_is_the_whole_request_and_is_used_once", par_pushed_request_is_the_whole_request_and_is_used_once)
        .each_backend("par_request_uri_of_another_client_is_refused", par_request_uri_of_another_client_is_refused)
        .each_backend("par_pushing_needs_client_authentication_and_a_valid_request", par_pushing_needs_client_authentication_and_a_valid_request)
        .each_backend("par_required_by_the_client_or_the_server_refuses_plain_requests", par_required_by_the_client_or_the_server_refuses_plain_requests)
        .each_backend("par_with_a_dpop_proof_binds_the_code_to_the_key", par_with_a_dpop_proof_binds_the_code_to_the_key);
}

async fn app(server: &TestServer, name: &str, require_par: bool) -> TestClient {
    let redirect_uri = format!("http://127.0.0.1:9/{}/callback", name.to_lowercase());
    let mut spec = NewClient::new(name);
    spec.redirect_uris = vec![redirect_uri.clone()];
    spec.grant_types = vec!["authorization_code".into()];
    spec.first_party = true;
    spec.require_par = require_par;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    TestClient { id: created.client.id, secret: created.client_secret, redirect_uri }
}

fn pushed_params<'a>(client: &'a TestClient, p: &'a Pkce, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", scope),
        ("state", "pushed-state"),
        ("nonce", "pushed-nonce"),
        ("code_challenge", p.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
}

async fn push(server: &TestServer, client: &TestClient, params: &[(&str, &str)], dpop: Option<String>) -> reqwest::Response {
    let mut req = http().post(server.url("/par")).basic_auth(&client.id, client.secret.as_ref()).form(params);
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn request_uri(server: &TestServer, client: &TestClient, params: &[(&str, &str)]) -> String {
    let res = push(server, client, params, None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 60, "{body}");
    let uri = body["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"), "{uri}");
    uri
}

fn authorize_with(server: &TestServer, client_id: &str, request_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().append_pair("client_id", client_id).append_pair("request_uri", request_uri);
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

async fn par_pushed_request_is_the_whole_request_and_is_used_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let client = app(&server, "Wiki", false).await;
    let p = pkce();
    let uri = request_uri(&server, &client, &pushed_params(&client, &p, "openid")).await;
    // The query tries to widen the scope and change the state: the pushed request wins (§4).
    let authorize = authorize_with(&server, &client.id, &uri, &[("scope", "openid email profile"), ("state", "query-state"), ("response_type", "code")]);
    let browser = Browser::new();
    let callback = sign_in(&browser, &server, &authorize, "alice").await;
    assert!(callback.starts_with(&client.redirect_uri), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("pushed-state"));
    let code = query_param(&callback, "code").expect("a code");
    let res = redeem(&server, &client, &code, &p.verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid", "the query did not widen the pushed scope");
    assert_eq!(id_claims(&tokens)["nonce"], "pushed-nonce");

    // Used once: the same request_uri again, even in the signed-in browser, gets no code.
    let res = browser.get(&authorize).await;
    assert_eq!(res.status(), 400, "an error page, not a redirect");
    assert!(error_page_message(res).await.contains("invalid, expired or already used"));
}

async fn par_request_uri_of_another_client_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let owner = app(&server, "Owner", false).await;
    let other = app(&server, "Other", false).await;
    let p = pkce();
    let uri = request_uri(&server, &owner, &pushed_params(&owner, &p, "openid")).await;
    let res = Browser::new().get(&authorize_with(&server, &other.id, &uri, &[])).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none(), "nothing was sent to a redirect URI");
    assert!(error_page_message(res).await.contains("invalid"));
    // A made-up reference, and one in another form, are refused the same way.
    for bogus in ["urn:ietf:params:oauth:request_uri:made-up", "https://evil.example.com/request"] {
        let res = Browser::new().get(&authorize_with(&server, &owner.id, bogus, &[])).await;
        assert_eq!(res.status(), 400, "{bogus}");
        assert!(res.headers().get("location").is_none());
    }
}

async fn par_pushing_needs_client_authentication_and_a_valid_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = app(&server, "Wiki", false).await;
    let p = pkce();
    let params = pushed_params(&client, &p, "openid");
    let res = http().post(server.url("/par")).basic_auth(&client.id, Some("wrong")).form(&params).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_client".into()));
    let res = http().post(server.url("/par")).form(&params).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_client".into()), "no client at all");

    let mut bad_redirect = params.clone();
    bad_redirect[1] = ("redirect_uri", "https://evil.example.com/cb");
    assert_eq!(error_code(push(&server, &client, &bad_redirect, None).await).await, (400, "invalid_request".into()));
    let mut bad_scope = params.clone();
    bad_scope[2] = ("scope", "openid admin:everything");
    assert_eq!(error_code(push(&server, &client, &bad_scope, None).await).await, (400, "invalid_scope".into()));
    let mut plain_pkce = params.clone();
    plain_pkce[6] = ("code_challenge_method", "plain");
    assert_eq!(error_code(push(&server, &client, &plain_pkce, None).await).await, (400, "invalid_request".into()));
    let mut nested = params.clone();
    nested.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    assert_eq!(error_code(push(&server, &client, &nested, None).await).await, (400, "invalid_request".into()));
}

async fn par_required_by_the_client_or_the_server_refuses_plain_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let strict = app(&server, "Strict", true).await;
    let p = pkce();
    let res = Browser::new().get(&authorize_url(&server, &strict, &p, &[])).await;
    let to = location(&res);
    assert!(to.starts_with(&strict.redirect_uri), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"));
    assert!(query_param(&to, "code").is_none());
    // Pushed, it works.
    let uri = request_uri(&server, &strict, &pushed_params(&strict, &p, "openid")).await;
    let callback = sign_in(&Browser::new(), &server, &authorize_with(&server, &strict.id, &uri, &[]), "alice").await;
    assert!(query_param(&callback, "code").is_some(), "{callback}");

    // par.required: every client, and discovery says so.
    let server = TestServer::start_with(backend, |c| c.par.required = true).await;
    let relaxed = app(&server, "Relaxed", false).await;
    let res = Browser::new().get(&authorize_url(&server, &relaxed, &p, &[])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("invalid_request"));
    let doc: Value = http().get(server.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["require_pushed_authorization_requests"], true);
    assert_eq!(doc["pushed_authorization_request_endpoint"], server.url("/par"));
}

async fn par_with_a_dpop_proof_binds_the_code_to_the_key(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let client = app(&server, "Bound", false).await;
    let key = DpopKey::new(SigningAlg::ES256);
    let p = pkce();
    let res = push(&server, &client, &pushed_params(&client, &p, "openid"), Some(key.proof("POST", &server.url("/par"), None))).await;
    assert_eq!(res.status(), 201);
    let uri = res.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_string();
    let callback = sign_in(&Browser::new(), &server, &authorize_with(&server, &client.id, &uri, &[]), "alice").await;
    let code = query_param(&callback, "code").unwrap();
    let redeem_with = |proof: Option<String>| {
        let mut req = http().post(server.url("/token")).basic_auth(&client.id, client.secret.as_ref()).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", p.verifier.as_str()),
        ]);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    // Another key's proof: refused (and a refused redemption spends the code: it was taken).
    let thief = DpopKey::new(SigningAlg::ES256);
    let res = redeem_with(Some(thief.proof("POST", &server.url("/token"), None))).await.unwrap();
    assert_eq!(error_code(res).await, (400, "invalid_grant".into()));

    // Again, from the start, redeemed by the key's holder.
    let p2 = pkce();
    let res = push(&server, &client, &pushed_params(&client, &p2, "openid"), Some(key.proof("POST", &server.url("/par"), None))).await;
    let uri = res.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_string();
    let callback = sign_in(&Browser::new(), &server, &authorize_with(&server, &client.id, &uri, &[]), "alice").await;
    let code = query_param(&callback, "code").unwrap();
    let res = http().post(server.url("/token")).basic_auth(&client.id, client.secret.as_ref())
        .header("DPoP", key.proof("POST", &server.url("/token"), None))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", client.redirect_uri.as_str()), ("code_verifier", p2.verifier.as_str())])
        .send().await.unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(jwt_claims(tokens["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());
}
