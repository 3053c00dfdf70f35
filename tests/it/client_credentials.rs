//! client_credentials with the Rust `oauth2` crate, and every client-authentication refusal.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::Value;
use sesame::store::AuthMethod;

use crate::support::harness::Tests;
use crate::support::machine::*;
use crate::support::sso::jwt_claims;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("the_oauth2_crate_gets_a_jwt_access_token", the_oauth2_crate_gets_a_jwt_access_token)
        .test("scopes_resources_and_algorithms", scopes_resources_and_algorithms)
        .each_backend("client_authentication_refusals", client_authentication_refusals)
        .each_backend("private_key_jwt_with_registered_keys", private_key_jwt_with_registered_keys)
        .test("private_key_jwt_with_a_jwks_uri", private_key_jwt_with_a_jwks_uri);
}

fn oauth2_http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn the_oauth2_crate_gets_a_jwt_access_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = add_machine(&server, "Billing", "invoices:read invoices:write", AuthMethod::ClientSecretBasic).await;
    let client = BasicClient::new(ClientId::new(m.id.clone()))
        .set_client_secret(ClientSecret::new(m.secret.clone().unwrap()))
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
    let token = client.exchange_client_credentials().add_scope(Scope::new("invoices:read".into())).request_async(&oauth2_http()).await.unwrap();
    assert_eq!(token.scopes().unwrap()[0].as_str(), "invoices:read");
    assert!(token.refresh_token().is_none(), "no refresh token for client_credentials");
    let claims = jwt_claims(token.access_token().secret());
    assert_eq!(claims["sub"], m.id.as_str());
    assert_eq!(claims["client_id"], m.id.as_str());
    assert_eq!(claims["aud"], server.base.as_str());
    assert_eq!(claims["scope"], "invoices:read");
    assert!(claims["jti"].is_string() && claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());

    // No scope asked: the client's own scopes. client_secret_post through the crate too.
    let post = add_machine(&server, "Poster", "a b", AuthMethod::ClientSecretPost).await;
    let client = BasicClient::new(ClientId::new(post.id.clone()))
        .set_client_secret(ClientSecret::new(post.secret.clone().unwrap()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(server.url("/token")).unwrap());
    let token = client.exchange_client_credentials().request_async(&oauth2_http()).await.unwrap();
    assert_eq!(jwt_claims(token.access_token().secret())["scope"], "a b", "{backend:?}");
}

async fn scopes_resources_and_algorithms() {
    let server = TestServer::start(Backend::Embedded).await;
    let m = add_machine(&server, "Svc", "reports:read", AuthMethod::ClientSecretBasic).await;
    let token = |form: Vec<(&'static str, &'static str)>| http().post(server.url("/token")).basic_auth(&m.id, m.secret.as_ref()).form(&form).send();
    assert_eq!(error_code(token(vec![("grant_type", "client_credentials"), ("scope", "reports:write")]).await.unwrap()).await, (400, "invalid_scope".into()));
    assert_eq!(error_code(token(vec![("grant_type", "client_credentials"), ("scope", "openid")]).await.unwrap()).await.1, "invalid_scope");
    assert_eq!(error_code(token(vec![("grant_type", "client_credentials"), ("resource", "not a uri")]).await.unwrap()).await.1, "invalid_target");
    let res = token(vec![("grant_type", "client_credentials"), ("resource", "https://api.example.com/"), ("resource", "https://files.example.com/")]).await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: Value = res.json().await.unwrap();
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["aud"], serde_json::json!(["https://api.example.com/", "https://files.example.com/"]));

    for alg in ["ES256", "EdDSA"] {
        let mut spec = sesame::admin::clients::NewClient::new(alg);
        spec.grant_types = vec!["client_credentials".into()];
        spec.scope = Some("x".into());
        spec.access_token_alg = Some(alg.parse().unwrap());
        let c = sesame::admin::clients::add(server.state.durable.as_ref(), &spec, "test", 0).await.unwrap();
        let res = http().post(server.url("/token")).basic_auth(&c.client.id, c.client_secret.as_ref()).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    }
}

async fn client_authentication_refusals(backend: Backend) {
    let server = TestServer::start(backend).await;
    let basic = add_machine(&server, "Basic", "x", AuthMethod::ClientSecretBasic).await;
    let post = add_machine(&server, "Post", "x", AuthMethod::ClientSecretPost).await;
    let cc = [("grant_type", "client_credentials")];
    let refused = |status: u16, error: &str, description: &str| (status, error.to_string(), description.to_string());
    let failed = refused(401, "invalid_client", "client authentication failed");

    let res = http().post(server.url("/token")).basic_auth(&basic.id, Some("wrong")).form(&cc).send().await.unwrap();
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(error_body(res).await, failed, "{backend:?}: bad secret");

    let res = http().post(server.url("/token")).basic_auth("nobody", Some("x")).form(&cc).send().await.unwrap();
    assert_eq!(error_body(res).await, failed, "unknown client");

    // Registered for basic, authenticating with post (and the other way round).
    let secret = basic.secret.clone().unwrap();
    let res = http().post(server.url("/token")).form(&[("grant_type", "client_credentials"), ("client_id", &basic.id), ("client_secret", &secret)]).send().await.unwrap();
    assert_eq!(error_body(res).await, refused(401, "invalid_client", "client authentication failed"), "wrong method: the same answer as an unknown client");
    let res = http().post(server.url("/token")).basic_auth(&post.id, post.secret.as_ref()).form(&cc).send().await.unwrap();
    assert_eq!(error_body(res).await, refused(401, "invalid_client", "client authentication failed"));

    // Two methods at once.
    let res = http().post(server.url("/token")).basic_auth(&basic.id, Some(&secret)).form(&[("grant_type", "client_credentials"), ("client_id", &basic.id), ("client_secret", &secret)]).send().await.unwrap();
    assert_eq!(error_body(res).await, refused(400, "invalid_request", "use exactly one client authentication method"));

    // No authentication at all, and a confidential client pretending to be public.
    let res = http().post(server.url("/token")).form(&cc).send().await.unwrap();
    assert_eq!(error_body(res).await, refused(401, "invalid_client", "no client authentication"));
    let res = http().post(server.url("/token")).form(&[("grant_type", "client_credentials"), ("client_id", &basic.id)]).send().await.unwrap();
    assert_eq!(error_body(res).await, refused(401, "invalid_client", "client authentication failed"));

    // A grant the client is not registered for.
    let res = http().post(server.url("/token")).basic_auth(&basic.id, Some(&secret)).form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]).send().await.unwrap();
    assert_eq!(error_body(res).await, refused(400, "unauthorized_client", "this client may not use the refresh_token grant"));
}

async fn private_key_jwt_with_registered_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = add_keyed_machine(&server, None, None).await;
    let token_endpoint = server.url("/token");
    // Each refusal is invalid_client; its description says which check refused it.
    let refused_for = |res: reqwest::Response, why: &'static str| async move {
        let (status, error, description) = error_body(res).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{why}: {description}");
        assert!(description.contains(why), "refused, but not because of {why}: {description}");
    };
    let a = assertion(&m, &token_endpoint, 60, "jti-1");
    assert_eq!(token_with_assertion(&server, &a).await.status(), 200, "{backend:?}");
    refused_for(token_with_assertion(&server, &a).await, "already used").await;
    let issuer_aud = assertion(&m, &server.base, 60, "jti-2");
    assert_eq!(token_with_assertion(&server, &issuer_aud).await.status(), 200, "issuer as audience");
    let expired = assertion(&m, &token_endpoint, -120, "jti-3");
    refused_for(token_with_assertion(&server, &expired).await, "expired").await;
    let wrong_aud = assertion(&m, "https://other.example.com/token", 60, "jti-4");
    refused_for(token_with_assertion(&server, &wrong_aud).await, "audience").await;
    let too_long = assertion(&m, &token_endpoint, 3600, "jti-5");
    refused_for(token_with_assertion(&server, &too_long).await, "too long").await;
    let (other_key, _) = client_key("ES256");
    let forged = KeyedMachine { id: m.id.clone(), key: other_key };
    refused_for(token_with_assertion(&server, &assertion(&forged, &token_endpoint, 60, "jti-6")).await, "client authentication failed").await; // a key we do not hold: the generic answer
}

async fn private_key_jwt_with_a_jwks_uri() {
    // The key server listens on loopback, which sesame contacts only when allowed to.
    let server = TestServer::start_with(Backend::Embedded, |config| config.outbound.allow_private_networks = true).await;
    let (key, public) = client_key("RS256");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/jwks", axum::routing::get(move || async move { public }));
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    let m = add_keyed_machine(&server, Some(jwks_uri), Some((key, String::new()))).await;
    let res = token_with_assertion(&server, &assertion(&m, &server.url("/token"), 60, "a")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(jwt_claims(body["access_token"].as_str().unwrap())["client_id"], m.id.as_str());
}
