//! A real headless Chromium signs in to a sesame client through an upstream provider we did not
//! write, node-oidc-provider: "Continue with Corp SSO" on sesame's login page, the provider's
//! own sign-in and consent pages, then back to the application with a code whose ID token
//! carries the upstream groups.

use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};

use crate::support::chromium::{start_app, start_browser, wait_for_url};
use crate::support::harness::{Need, Tests};
use crate::support::node_upstream::{sesame_behind, sign_in_upstream, NodeUpstream};
use crate::support::sso::{id_claims, pkce, query_param, redeem, TestClient};
use crate::support::Backend;

pub fn tests(t: &mut Tests) {
    t.each_backend_needing(&[Need::Chromium, Need::Node], "chromium_signs_in_through_node_oidc_provider", chromium_signs_in_through_node_oidc_provider);
}

async fn chromium_signs_in_through_node_oidc_provider(backend: Backend) {
    let mut node = NodeUpstream::start();
    let server = sesame_behind(&mut node, backend).await;

    let app = start_app().await;
    let mut spec = NewClient::new("Wiki");
    spec.redirect_uris = vec![format!("{app}/one/callback")];
    spec.grant_types = vec!["authorization_code".into()];
    spec.scope = Some("openid profile email groups".into());
    spec.first_party = true;
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", 0).await.unwrap();
    let client = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: format!("{app}/one/callback") };

    let profile = tempfile::tempdir().unwrap();
    let (_driver, browser) = start_browser(profile.path()).await;
    let p = pkce();
    let authorize = crate::support::sso::authorize_url(&server, &client, &p, &[("scope", "openid profile email groups"), ("nonce", "wiki-nonce")]);
    browser.goto(&authorize).await.unwrap();
    wait_for_url(&browser, &server.url("/login")).await;
    sign_in_upstream(&browser, &node, "ada").await;

    let callback = wait_for_url(&browser, &client.redirect_uri).await;
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("{backend:?}: no code at {callback}"));
    let tokens: Value = redeem(&server, &client, &code, &p.verifier).await.json().await.unwrap();
    let claims = id_claims(&tokens);
    let user = server.state.durable.user_by_username("ada").await.unwrap().expect("created at the first sign-in");
    assert_eq!(claims["sub"], user.sub.as_str());
    assert_eq!(claims["groups"], json!(["engineering", "sesame-admins"]), "{claims}");
    assert_eq!(claims["nonce"], "wiki-nonce");
    assert_eq!(user.email.as_deref(), Some("ada@corp.example"));
    assert_eq!(server.state.durable.upstream_link("corp", "ada").await.unwrap().unwrap().sub, user.sub);
    assert_eq!(server.state.durable.user_roles(&user.sub).await.unwrap(), ["admin"]);
    browser.close().await.unwrap();
    server.stop().await;
}
