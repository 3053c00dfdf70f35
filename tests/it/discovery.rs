//! Discovery, the JWKS, health, readiness and metrics.

use crate::support::harness::Tests;
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("discovery_jwks_health_and_metrics_answer", discovery_jwks_health_and_metrics_answer)
        .test("unknown_paths_are_counted_without_their_path", unknown_paths_are_counted_without_their_path);
}

async fn discovery_jwks_health_and_metrics_answer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = http();

    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let doc: serde_json::Value = client.get(server.url(path)).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["issuer"], server.base, "{backend:?} {path}");
        assert_eq!(doc["jwks_uri"], server.url("/jwks.json"));
        assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
        assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["device_authorization_endpoint"], server.url("/device_authorization"));
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.iter().any(|g| g == "urn:ietf:params:oauth:grant-type:device_code"), "{grants:?}");
        for endpoint in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint"] {
            assert!(doc[endpoint].as_str().unwrap().starts_with(&server.base), "{endpoint}");
        }
    }

    let res = client.get(server.url("/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let jwks: serde_json::Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    for (kty, alg) in [("RSA", "RS256"), ("EC", "ES256"), ("OKP", "EdDSA")] {
        let key = keys.iter().find(|k| k["kty"] == kty).unwrap_or_else(|| panic!("no {kty} key"));
        assert_eq!(key["alg"], alg);
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        assert!(key.get("d").is_none(), "private part published!");
    }
    let cached = client.get(server.url("/jwks.json")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{backend:?}");

    let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sesame_http_requests_total{route=\"/jwks.json\",method=\"GET\",status=\"200\"} 1"), "{metrics}");
    assert!(metrics.contains("sesame_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("sesame_signing_key_rotations_total{alg=\"RS256\"} 1"));
    server.stop().await;
}

async fn unknown_paths_are_counted_without_their_path() {
    let server = TestServer::start(Backend::Embedded).await;
    let res = http().get(server.url("/no/such/thing/123")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let metrics = http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("route=\"unmatched\""));
    assert!(!metrics.contains("/no/such/thing"));
}
