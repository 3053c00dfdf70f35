//! A relying party built with the `openidconnect` crate: discovery, code flow with PKCE and
//! nonce, ID-token verification (signature, nonce, at_hash), userinfo, refresh.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use sesame::admin::clients::{self, NewClient};

use crate::support::harness::Tests;
use crate::support::sso::{absolute, add_user, follow_to_callback, hidden, location, query_param, Browser, PASSWORD};
use crate::support::{Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("openidconnect_crate_relying_party", openidconnect_crate_relying_party);
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn openidconnect_crate_relying_party(backend: Backend) {
    let server = TestServer::start(backend).await;
    add_user(&server, "alice").await;
    let mut spec = NewClient::new("Rust RP");
    spec.redirect_uris = vec!["http://127.0.0.1:9/rp/callback".into()];
    let created = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap();

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http()).await.expect("discovery");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(created.client.id.clone()), Some(ClientSecret::new(created.client_secret.clone().unwrap())))
        .set_redirect_uri(RedirectUrl::new(spec.redirect_uris[0].clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The user signs in on sesame's login page.
    let browser = Browser::new();
    let res = browser.get(auth_url.as_str()).await;
    let page = browser.get(&absolute(&server, &location(&res))).await.text().await.unwrap();
    let res = browser
        .post_form(&server.url("/login"), &[("req", &hidden(&page, "req")), ("csrf", &hidden(&page, "csrf")), ("username", "alice"), ("password", PASSWORD)])
        .await;
    let callback = follow_to_callback(&browser, &server, absolute(&server, &location(&res))).await;
    assert_eq!(query_param(&callback, "state").as_deref(), Some(csrf.secret().as_str()));
    let code = query_param(&callback, "code").unwrap();

    let tokens = client.exchange_code(AuthorizationCode::new(code)).unwrap().set_pkce_verifier(verifier).request_async(&http()).await.expect("token exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token.claims(&id_verifier, &nonce).expect("ID token verifies (signature, iss, aud, exp, nonce)");
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&id_verifier).unwrap()).unwrap();
    assert_eq!(&actual, expected_hash, "{backend:?}: at_hash");
    assert!(claims.auth_time().is_some());

    let info: CoreUserInfoClaims = client.user_info(tokens.access_token().clone(), Some(claims.subject().clone())).unwrap().request_async(&http()).await.expect("userinfo");
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(info.preferred_username().unwrap().as_str(), "alice");

    let refresh = tokens.refresh_token().expect("a refresh token");
    let refreshed = client.exchange_refresh_token(refresh).unwrap().request_async(&http()).await.expect("refresh");
    assert_ne!(refreshed.refresh_token().unwrap().secret(), refresh.secret(), "rotated");
    let info: CoreUserInfoClaims = client.user_info(refreshed.access_token().clone(), None).unwrap().request_async(&http()).await.unwrap();
    assert_eq!(info.subject(), claims.subject());
}
