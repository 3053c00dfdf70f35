//! A signed-in user with a refresh token, and the calls that use one: refresh, introspection,
//! and an `oauth2` crate client for all of the token endpoints.

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, IntrospectionUrl, RevocationUrl, StandardRevocableToken, TokenUrl};
use serde_json::Value;
use sesame::admin::clients::{self, NewClient};

use crate::support::sso::*;
use crate::support::{http, TestServer};

pub struct Session {
    pub app: TestClient,
    pub access: String,
    pub refresh: String,
}

/// alice, signed in to a first-party client "Portal" with `offline_access`.
pub async fn signed_in_with_refresh(server: &TestServer) -> Session {
    add_user(server, "alice").await;
    let mut spec = NewClient::new("Portal");
    spec.redirect_uris = vec!["http://127.0.0.1:9/portal/callback".into()];
    spec.first_party = true;
    spec.scope = Some("openid profile email".into());
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();
    let app = TestClient { id: created.client.id, secret: created.client_secret, redirect_uri: spec.redirect_uris[0].clone() };
    let p = pkce();
    let callback = sign_in(&Browser::new(), server, &authorize_url(server, &app, &p, &[("scope", "openid profile offline_access")]), "alice").await;
    let tokens: Value = redeem(server, &app, &query_param(&callback, "code").unwrap(), &p.verifier).await.json().await.unwrap();
    Session { access: tokens["access_token"].as_str().unwrap().into(), refresh: tokens["refresh_token"].as_str().expect("a refresh token").into(), app }
}

pub type OAuth2Client = oauth2::Client<
    oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
    oauth2::StandardTokenResponse<oauth2::EmptyExtraTokenFields, oauth2::basic::BasicTokenType>,
    oauth2::StandardTokenIntrospectionResponse<oauth2::EmptyExtraTokenFields, oauth2::basic::BasicTokenType>,
    StandardRevocableToken,
    oauth2::StandardErrorResponse<oauth2::RevocationErrorResponseType>,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
>;

pub fn oauth2_client(server: &TestServer, id: &str, secret: &str) -> OAuth2Client {
    BasicClient::new(ClientId::new(id.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(server.url("/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(server.url("/revoke")).unwrap())
}

/// The HTTP client the `oauth2` crate calls with (no redirects).
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Introspects `token` as `caller`; the answer must not be cached.
pub async fn introspect(server: &TestServer, caller: &TestClient, token: &str) -> Value {
    let res = http().post(server.url("/introspect")).basic_auth(&caller.id, caller.secret.as_ref()).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

/// A refresh_token grant by `app` (optionally narrowing to `scope`).
pub async fn refresh(server: &TestServer, app: &TestClient, token: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).form(&form).send().await.unwrap()
}
