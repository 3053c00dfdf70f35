//! Token revocation (RFC 7009): refresh tokens take their family with them, access tokens are
//! denied until they expire, other clients' tokens are refused.

use oauth2::{AccessToken, StandardRevocableToken};
use sesame::store::AuthMethod;

use crate::support::harness::Tests;
use crate::support::machine::{add_machine, error_code};
use crate::support::tokens::*;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("revocation_of_refresh_and_access_tokens", revocation_of_refresh_and_access_tokens);
}

async fn revocation_of_refresh_and_access_tokens(backend: Backend) {
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
    assert_eq!(introspect(&server, &s.app, &s.access).await["active"], true, "{backend:?}: a refused revocation revoked the access token");

    // And nobody can without authenticating.
    let res = http().post(server.url("/revoke")).form(&[("token", s.refresh.as_str())]).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_client".into()));
    assert_eq!(introspect(&server, &s.app, &s.refresh).await["active"], true);

    // The oauth2 crate refuses a non-https revocation endpoint (RFC 7009 §2), so these are raw.
    let revoke = |token: String| http().post(server.url("/revoke")).basic_auth(&s.app.id, s.app.secret.as_ref()).form(&[("token", token), ("token_type_hint", "access_token".into())]).send();
    assert!(client.revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(s.access.clone()))).is_err(), "oauth2 insists on https");

    // The access token: denied until it expires, at introspection and userinfo alike.
    let res = revoke(s.access.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(introspect(&server, &s.app, &s.access).await["active"], false);
    assert_eq!(http().get(server.url("/userinfo")).bearer_auth(&s.access).send().await.unwrap().status(), 401);
    assert_eq!(introspect(&server, &s.app, &s.refresh).await["active"], true, "revoking an access token leaves the refresh token alone");

    // The refresh token: its family dies.
    assert_eq!(revoke(s.refresh.clone()).await.unwrap().status(), 200, "a wrong hint does not matter");
    assert_eq!(introspect(&server, &s.app, &s.refresh).await["active"], false);
    assert_eq!(error_code(refresh(&server, &s.app, &s.refresh, None).await).await.1, "invalid_grant");

    // Unknown tokens: 200, as RFC 7009 asks.
    let res = http().post(server.url("/revoke")).basic_auth(&s.app.id, s.app.secret.as_ref()).form(&[("token", "never-issued")]).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
