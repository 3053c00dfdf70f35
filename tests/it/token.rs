//! The token endpoint before any grant: form parsing, the grant type, the client's grants.

use serde_json::Value;

use crate::support::harness::Tests;
use crate::support::sso::add_client;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.test("token_endpoint_refuses_malformed_requests", token_endpoint_refuses_malformed_requests);
}

async fn token_endpoint_refuses_malformed_requests() {
    let server = TestServer::start(Backend::Embedded).await;
    let app = add_client(&server, "App", true, false).await;
    let post = |body: &'static str, content_type: &'static str| {
        http().post(server.url("/token")).basic_auth(&app.id, app.secret.as_ref()).header("content-type", content_type).body(body).send()
    };
    for (name, body, content_type, error, says) in [
        ("duplicate parameter", "grant_type=authorization_code&code=a&code=b", "application/x-www-form-urlencoded", "invalid_request", "parameter `code` given more than once"),
        ("JSON body", "{\"grant_type\":\"authorization_code\"}", "application/json", "invalid_request", "application/x-www-form-urlencoded"),
        ("password grant", "grant_type=password", "application/x-www-form-urlencoded", "unsupported_grant_type", "`password`"),
        ("no grant_type", "code=x", "application/x-www-form-urlencoded", "invalid_request", "grant_type"),
        ("a grant the client lacks", "grant_type=client_credentials", "application/x-www-form-urlencoded", "unauthorized_client", "client_credentials"),
    ] {
        let res = post(body, content_type).await.unwrap();
        assert_eq!(res.status(), 400, "{name}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], error, "{name}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{name}: the description must say what is wrong: {description}");
    }
}
