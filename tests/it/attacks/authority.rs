//! Authority belongs to people and roles, not to a client's scope: a user signing in through a
//! client that may ask for `sesame:admin` gets it only while they hold the admin role, and the
//! admin API checks the role on every call.

use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::admin::roles;

use crate::support::harness::Tests;
use crate::support::sso::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("the_admin_scope_follows_the_users_role_not_the_client", the_admin_scope_follows_the_users_role_not_the_client);
}

async fn the_admin_scope_follows_the_users_role_not_the_client(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let mut spec = NewClient::new("Console");
    spec.redirect_uris = vec!["http://127.0.0.1:9/console/callback".into()];
    spec.first_party = true;
    spec.scope = Some("openid sesame:admin".into());
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let console = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() };
    let sign_in_for_admin = || async {
        let p = pkce();
        let callback = sign_in(&Browser::new(), &server, &authorize_url(&server, &console, &p, &[("scope", "openid sesame:admin")]), "alice").await;
        let tokens: Value = redeem(&server, &console, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
        (tokens["scope"].as_str().unwrap_or_default().to_string(), tokens["access_token"].as_str().unwrap().to_string())
    };
    let admin_api = |token: String| {
        let req = http().get(server.url("/admin/api-keys")).bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };

    let (scope, token) = sign_in_for_admin().await;
    assert_eq!(scope, "openid", "{backend:?}: a user without the admin role was given sesame:admin by the client's registration");
    assert_eq!(admin_api(token).await, 403, "{backend:?}");

    let now = server.state.now();
    roles::grant(server.state.durable.as_ref(), "alice", "admin", "test", now).await.unwrap();
    let (scope, token) = sign_in_for_admin().await;
    assert_eq!(scope, "openid sesame:admin", "{backend:?}: an admin asking for it gets it");
    assert_eq!(admin_api(token.clone()).await, 200, "{backend:?}");

    // Taking the role away takes the authority away at once, even from a token already issued.
    roles::remove(server.state.durable.as_ref(), "alice", "admin", "test", now).await.unwrap();
    assert_eq!(admin_api(token).await, 403, "{backend:?}: a former admin's token still worked");
    let audit = server.state.durable.recent_audit(None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.kind == "user.role.grant") && audit.iter().any(|e| e.kind == "user.role.remove"), "role changes are audited");
}
