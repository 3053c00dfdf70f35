//! A token minted for another resource server is refused by sesame's own APIs (RFC 9068 §4,
//! RFC 9700 §2.3): a resource server that receives one cannot replay it against sesame.

use serde_json::Value;
use sesame::store::AuthMethod;

use crate::support::harness::Tests;
use crate::support::machine::add_machine;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("a_token_for_another_resource_server_is_refused_by_sesames_apis", a_token_for_another_resource_server_is_refused_by_sesames_apis);
}

async fn a_token_for_another_resource_server_is_refused_by_sesames_apis(backend: Backend) {
    // The default audience is another API: tokens without a resource are for it, and for sesame
    // only when they carry one of sesame's scopes.
    let server = TestServer::start_with(backend, |c| c.tokens.default_audience = Some("https://api.example.com".into())).await;
    let ops = add_machine(&server, "Ops", "sesame:admin reports:read", AuthMethod::ClientSecretBasic).await;
    let token = |extra: &'static [(&'static str, &'static str)]| {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let req = http().post(server.url("/token")).basic_auth(&ops.id, ops.secret.as_ref()).form(&form);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string() }
    };
    let admin_list = |t: String| {
        let req = http().get(server.url("/admin/api-keys")).bearer_auth(t);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(admin_list(token(&[]).await).await.status(), 200, "{backend:?}: a token with sesame's scope is for sesame too");

    // Asked for another resource (even with sesame's scope): that resource's alone.
    let for_api = token(&[("resource", "https://reports.example.com")]).await;
    let res = admin_list(for_api).await;
    assert_eq!(res.status(), 401, "{backend:?}: a token for reports.example.com was accepted by sesame's admin API");
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    assert_eq!(res.json::<Value>().await.unwrap()["error_description"], "the access token is not for this server");

    // A token for the default API without sesame's scope: refused the same way.
    let reports_only = token(&[("scope", "reports:read")]).await;
    let res = http().get(server.url("/userinfo")).bearer_auth(reports_only).send().await.unwrap();
    assert_eq!(res.status(), 401);
}
