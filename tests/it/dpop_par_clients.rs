//! DPoP and PAR driven by client libraries we did not write: panva's `oauth4webapi` and
//! `openid-client` (OpenID-certified), run by `tests/node/dpop_par.mjs` against a test server
//! on both backends. The script prints what it saw; the assertions are here.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::store::AuthMethod;

use crate::support::harness::{environment, Need, Tests};
use crate::support::machine::add_machine;
use crate::support::sso::{add_user, PASSWORD};
use crate::support::{output_within, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    let node = &[Need::NodeClients];
    t.each_backend_needing(node, "dpop_oauth4webapi_client_credentials_admin_api_and_introspection", dpop_oauth4webapi_client_credentials_admin_api_and_introspection)
        .each_backend_needing(node, "dpop_oauth4webapi_follows_server_nonces", dpop_oauth4webapi_follows_server_nonces)
        .each_backend_needing(node, "par_oauth4webapi_pushed_code_flow_with_pkce_and_dpop", par_oauth4webapi_pushed_code_flow_with_pkce_and_dpop)
        .each_backend_needing(node, "par_openid_client_pushed_code_flow_with_pkce_and_dpop", par_openid_client_pushed_code_flow_with_pkce_and_dpop)
        .each_backend_needing(node, "dpop_openid_client_client_credentials_and_admin_api", dpop_openid_client_client_credentials_and_admin_api);
}

/// Runs one scenario of `tests/node/dpop_par.mjs`; its JSON result.
fn run(issuer: &str, scenario: &str, vars: &[(&str, &str)]) -> Value {
    let node = environment().node_clients.clone().expect("declared Need::NodeClients");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/dpop_par.mjs");
    let mut cmd = Command::new(node);
    cmd.arg(script).arg(scenario).env("SESAME_ISSUER", issuer);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = output_within(cmd, None, Duration::from_secs(60));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{scenario} failed: {stderr}\n{stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{scenario} printed no JSON ({e}): {stdout}"))
}

/// `run` off the async runtime, since the script calls back into the server it runs on.
async fn run_script(server: &TestServer, scenario: &'static str, vars: Vec<(&'static str, String)>) -> Value {
    let base = server.base.clone();
    tokio::task::spawn_blocking(move || {
        let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(&base, scenario, &borrowed)
    })
    .await
    .unwrap()
}

async fn dpop_oauth4webapi_client_credentials_admin_api_and_introspection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let out = run_script(&server, "oauth4webapi-client-credentials", vec![("CLIENT_ID", m.id.clone()), ("CLIENT_SECRET", m.secret.clone().unwrap())]).await;
    assert_eq!(out["token_type"], "dpop", "{out}");
    assert_eq!(out["admin"]["status"], 200, "the admin API served the bound token with its proof: {out}");
    assert!(out["admin"]["body"]["keys"].is_array());
    assert_eq!(out["asBearer"]["status"], 401, "the same token as a bearer token: {out}");
    assert_eq!(out["asBearer"]["scheme"], "dpop");
    assert_eq!(out["asBearer"]["error"], "invalid_token");
    assert_eq!(out["introspected"]["active"], true);
    assert_eq!(out["introspected"]["token_type"], "DPoP");
    assert_eq!(out["introspected"]["cnf"]["jkt"], out["jkt"], "introspection names the library's key: {out}");
}

async fn dpop_oauth4webapi_follows_server_nonces(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.dpop.nonce = true).await;
    let m = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let out = run_script(&server, "oauth4webapi-client-credentials", vec![("CLIENT_ID", m.id.clone()), ("CLIENT_SECRET", m.secret.clone().unwrap())]).await;
    assert_eq!(out["nonceRetried"], true, "the first proof had no nonce and was answered use_dpop_nonce: {out}");
    assert_eq!(out["token_type"], "dpop");
    assert_eq!(out["admin"]["status"], 200);
}

/// A public, first-party client for the code flow, and alice.
async fn public_app(server: &TestServer) -> (String, String) {
    add_user(server, "alice").await;
    let redirect_uri = "http://127.0.0.1:9/app/callback".to_string();
    let mut spec = NewClient::new("App");
    spec.redirect_uris = vec![redirect_uri.clone()];
    spec.auth_method = AuthMethod::None;
    spec.first_party = true;
    spec.require_par = true;
    spec.require_dpop = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    (created.client.id, redirect_uri)
}

async fn par_oauth4webapi_pushed_code_flow_with_pkce_and_dpop(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client_id, redirect_uri) = public_app(&server).await;
    let vars = vec![("CLIENT_ID", client_id.clone()), ("REDIRECT_URI", redirect_uri), ("USERNAME", "alice".into()), ("PASSWORD", PASSWORD.into())];
    let out = run_script(&server, "oauth4webapi-par-code", vars).await;
    assert_eq!(out["expires_in"], 60);
    assert_eq!(out["token_type"], "dpop", "{out}");
    assert_eq!(out["userinfo"]["preferred_username"], "alice");
    assert_eq!(out["userinfo"]["email"], "alice@example.com");
    assert_eq!(out["replay_status"], 400, "the used request_uri got the error page, not a redirect: {out}");
    assert_eq!(out["refreshed_token_type"], "dpop");
    // The refresh token the library holds is bound to its key: without the key it is refused.
    let refresh_token = out["refresh_token"].as_str().unwrap();
    let res = crate::support::http()
        .post(server.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a stolen bound refresh token without the key");
    let access = out["access_token"].as_str().unwrap();
    let res = crate::support::http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), 401, "a stolen bound access token as a bearer token");
}

async fn par_openid_client_pushed_code_flow_with_pkce_and_dpop(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (client_id, redirect_uri) = public_app(&server).await;
    let vars = vec![("CLIENT_ID", client_id), ("REDIRECT_URI", redirect_uri), ("USERNAME", "alice".into()), ("PASSWORD", PASSWORD.into())];
    let out = run_script(&server, "openid-client-par-code", vars).await;
    assert_eq!(out["token_type"], "dpop", "{out}");
    assert!(out["request_uri"].as_str().unwrap().starts_with("urn:ietf:params:oauth:request_uri:"), "{out}");
    assert_eq!(out["userinfo"]["sub"], out["sub"]);
    assert_eq!(out["userinfo"]["email"], "alice@example.com");
}

async fn dpop_openid_client_client_credentials_and_admin_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = add_machine(&server, "Ops", "sesame:admin", AuthMethod::ClientSecretBasic).await;
    let out = run_script(&server, "openid-client-client-credentials", vec![("CLIENT_ID", m.id.clone()), ("CLIENT_SECRET", m.secret.clone().unwrap())]).await;
    assert_eq!(out["token_type"], "dpop", "{out}");
    assert_eq!(out["admin_status"], 200, "{out}");
}
