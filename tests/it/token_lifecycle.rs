//! Refresh-token rotation and reuse detection, introspection and revocation.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AccessToken, ClientId, ClientSecret, IntrospectionUrl, RefreshToken, RevocationUrl, StandardRevocableToken, TokenIntrospectionResponse, TokenResponse, TokenUrl};
use serde_json::Value;
use sesame::admin::clients::{self, NewClient};
use sesame::store::AuthMethod;

use crate::machine_support::{add_machine, error_code};
use crate::sso_support::*;
use crate::support::{backends, http, Backend, TestServer};

struct Session {
    app: TestClient,
    access: String,
    refresh: String,
}

async fn signed_in_with_refresh(server: &TestServer) -> Session {
    add_user(server, "alice").await;
    let mut spec = NewClient::new("Portal");
    spec.redirect_uris = vec!["http://127.0.0.1:9/portal/callback".into()];
    spec.first_party = true;
    spec.scope = Some("openid profile email".into());
    let created = clients::add(server.state.durable.as_ref(), &spec, server.state.now()).await.unwrap();
    let app = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() };
    let p = pkce();
    let callback = sign_in(&Browser::new(), server, &authorize_url(server, &app, &p, &[("scope", "openid profile offline_access")]), "alice").await;
    let tokens: Value = redeem(server, &app, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    Session { access: tokens["access_token"].as_str().unwrap().into(), refresh: tokens["refresh_token"].as_str().expect("a refresh token").into(), app }
}

fn oauth2_client(server: &TestServer, id: &str, secret: &str) -> oauth2::Client<
    oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
    oauth2::StandardTokenResponse<oauth2::EmptyExtraTokenFields, oauth2::basic::BasicTokenType>,
    oauth2::StandardTokenIntrospectionResponse<oauth2::EmptyExtraTokenFields, oauth2::basic::BasicTokenType>,
    StandardRevocableToken,
    oauth2::StandardErrorResponse<oauth2::RevocationErrorResponseType>,
    oauth2::EndpointNotSet, oauth2::EndpointNotSet, oauth2::EndpointSet, oauth2::EndpointSet, oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(id.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(server.url("/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(server.url("/revoke")).unwrap())
}

fn plain() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn introspect(server: &TestServer, caller: &TestClient, token: &str) -> Value {
    let res = http().post(server.url("/introspect")).basic_auth(&caller.id, caller.secret.as_ref()).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn refresh(server: &TestServer, app: &TestClient, token: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn rotation_with_the_oauth2_crate_and_reuse_revoking_the_family() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |c| c.tokens.refresh_reuse_grace = Duration::ZERO).await;
        let s = signed_in_with_refresh(&server).await;
        let client = oauth2_client(&server, &s.app.id, s.app.secret.as_ref().unwrap());
        let rotated = client.exchange_refresh_token(&RefreshToken::new(s.refresh.clone())).request_async(&plain()).await.unwrap();
        let second_refresh = rotated.refresh_token().unwrap().secret().clone();
        assert_ne!(second_refresh, s.refresh, "rotated");
        let second_access = rotated.access_token().secret().clone();
        assert_eq!(introspect(&server, &s.app, &second_refresh).await["active"], true);
        assert_eq!(introspect(&server, &s.app, &s.refresh).await, serde_json::json!({"active": false}), "the old token died");

        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(error_code(refresh(&server, &s.app, &s.refresh, None).await).await, (400, "invalid_grant".into()), "{backend:?}: reuse");
        // The whole family is revoked: the newest refresh token and the family's access tokens.
        assert_eq!(introspect(&server, &s.app, &second_refresh).await["active"], false, "{backend:?}");
        assert_eq!(introspect(&server, &s.app, &second_access).await["active"], false);
        assert_eq!(introspect(&server, &s.app, &s.access).await["active"], false);
        assert_eq!(error_code(refresh(&server, &s.app, &second_refresh, None).await).await.1, "invalid_grant");
    }
}

#[tokio::test]
async fn a_quick_retry_is_not_reuse_and_scope_only_narrows() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let s = signed_in_with_refresh(&server).await;
        let first: Value = refresh(&server, &s.app, &s.refresh, None).await.json().await.unwrap();
        let retry = refresh(&server, &s.app, &s.refresh, None).await;
        assert_eq!(retry.status(), 200, "{backend:?}: a retry within the grace window");
        let retry: Value = retry.json().await.unwrap();
        assert_eq!(introspect(&server, &s.app, first["refresh_token"].as_str().unwrap()).await["active"], true, "nothing revoked");
        let current = retry["refresh_token"].as_str().unwrap();

        let res = refresh(&server, &s.app, current, Some("openid profile email")).await;
        assert_eq!(error_code(res).await.1, "invalid_scope", "widening");
        // The refused request did not consume the token.
        let fresh: Value = refresh(&server, &s.app, current, Some("openid")).await.json().await.unwrap();
        assert_eq!(fresh["scope"], "openid", "{backend:?}: narrowing");
    }
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client() {
    let server = TestServer::start(Backend::Embedded).await;
    let s = signed_in_with_refresh(&server).await;
    let mut spec = NewClient::new("Other");
    spec.redirect_uris = vec!["http://127.0.0.1:9/o".into()];
    let other = clients::add(server.state.durable.as_ref(), &spec, 0).await.unwrap();
    let other = TestClient { id: other.client.id, secret: other.client_secret, redirect_uri: String::new() };
    assert_eq!(error_code(refresh(&server, &other, &s.refresh, None).await).await.1, "invalid_grant");
    assert_eq!(introspect(&server, &other, &s.refresh).await, serde_json::json!({"active": false}), "described only to its holder");
    assert_eq!(refresh(&server, &s.app, &s.refresh, None).await.status(), 200, "still usable by its own client");
}

#[tokio::test]
async fn introspection_for_resource_servers() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let s = signed_in_with_refresh(&server).await;
        let rs = add_machine(&server, "Resource Server", "introspect", AuthMethod::ClientSecretBasic).await;
        let rs_client = oauth2_client(&server, &rs.id, rs.secret.as_ref().unwrap());
        let answer = rs_client.introspect(&AccessToken::new(s.access.clone())).set_token_type_hint("access_token").request_async(&plain()).await.unwrap();
        assert!(answer.active(), "{backend:?}");
        assert_eq!(answer.client_id().unwrap().as_str(), s.app.id);
        assert!(answer.scopes().unwrap().iter().any(|sc| sc.as_str() == "openid"));
        assert!(answer.exp().is_some() && answer.sub().is_some());

        // The hint is not trusted: an access token under a refresh_token hint is still found.
        let rs_as = TestClient { id: rs.id.clone(), secret: rs.secret.clone(), redirect_uri: String::new() };
        let res = http().post(server.url("/introspect")).basic_auth(&rs.id, rs.secret.as_ref()).form(&[("token", s.access.as_str()), ("token_type_hint", "refresh_token")]).send().await.unwrap();
        assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
        assert_eq!(introspect(&server, &rs_as, "garbage").await, serde_json::json!({"active": false}));
        assert_eq!(introspect(&server, &rs_as, "a.b.c").await, serde_json::json!({"active": false}));

        // Callers must authenticate, and public clients may not introspect.
        let res = http().post(server.url("/introspect")).form(&[("token", s.access.as_str())]).send().await.unwrap();
        assert_eq!(res.status(), 401);
    }
}

#[tokio::test]
async fn introspection_can_be_narrowed_to_listed_clients() {
    let server = TestServer::start_with(Backend::Embedded, |c| c.introspection.allowed_clients = vec!["only-this-one".into()]).await;
    let rs = add_machine(&server, "RS", "x", AuthMethod::ClientSecretBasic).await;
    let res = http().post(server.url("/introspect")).basic_auth(&rs.id, rs.secret.as_ref()).form(&[("token", "x")]).send().await.unwrap();
    assert_eq!(error_code(res).await.1, "unauthorized_client");
}

#[tokio::test]
async fn revocation_of_refresh_and_access_tokens() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let s = signed_in_with_refresh(&server).await;
        let client = oauth2_client(&server, &s.app.id, s.app.secret.as_ref().unwrap());

        // Another client cannot revoke them.
        let thief = add_machine(&server, "Thief", "x", AuthMethod::ClientSecretBasic).await;
        let res = http().post(server.url("/revoke")).basic_auth(&thief.id, thief.secret.as_ref()).form(&[("token", s.refresh.as_str())]).send().await.unwrap();
        assert_eq!(error_code(res).await.1, "unauthorized_client");
        let res = http().post(server.url("/revoke")).basic_auth(&thief.id, thief.secret.as_ref()).form(&[("token", s.access.as_str())]).send().await.unwrap();
        assert_eq!(error_code(res).await.1, "unauthorized_client");
        assert_eq!(introspect(&server, &s.app, &s.refresh).await["active"], true, "{backend:?}");

        // The oauth2 crate refuses a non-https revocation endpoint (RFC 7009 §2), so these are raw.
        let revoke = |token: String| http().post(server.url("/revoke")).basic_auth(&s.app.id, s.app.secret.as_ref()).form(&[("token", token), ("token_type_hint", "access_token".into())]).send();
        assert!(client.revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(s.access.clone()))).is_err(), "oauth2 insists on https");

        // The access token: denied until it expires, at introspection and userinfo alike.
        assert_eq!(revoke(s.access.clone()).await.unwrap().status(), 200);
        assert_eq!(introspect(&server, &s.app, &s.access).await["active"], false);
        assert_eq!(http().get(server.url("/userinfo")).bearer_auth(&s.access).send().await.unwrap().status(), 401);

        // The refresh token: its family dies.
        assert_eq!(revoke(s.refresh.clone()).await.unwrap().status(), 200, "a wrong hint does not matter");
        assert_eq!(introspect(&server, &s.app, &s.refresh).await["active"], false);
        assert_eq!(error_code(refresh(&server, &s.app, &s.refresh, None).await).await.1, "invalid_grant");

        // Unknown tokens: 200, as RFC 7009 asks.
        let res = http().post(server.url("/revoke")).basic_auth(&s.app.id, s.app.secret.as_ref()).form(&[("token", "never-issued")]).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
}
