//! Forged and altered JWTs: every JWT sesame accepts (its own access tokens at userinfo and
//! introspection, client assertions) is checked by RFC 7515/7519 in full, with the algorithm
//! of the key, never of the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sesame::crypto::alg::SigningAlg;
use sesame::crypto::keys::SigningKeyPair;

use crate::support::harness::Tests;
use crate::support::machine::{add_keyed_machine, client_key, error_body, token_with_assertion, KeyedMachine};
use crate::support::tokens::{introspect, signed_in_with_refresh};
use crate::support::{http, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("forged_and_altered_access_tokens_are_refused", forged_and_altered_access_tokens_are_refused)
        .each_backend("client_assertions_are_validated_in_full", client_assertions_are_validated_in_full);
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A JWS with any header and claims, signed by `key` (whatever the header says).
fn jws(key: &SigningKeyPair, header: Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&header), b64(claims));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.').map(|p| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn forged_and_altered_access_tokens_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = signed_in_with_refresh(&server).await;
    let userinfo = |token: String| {
        let req = http().get(server.url("/userinfo")).bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(userinfo(session.access.clone()).await, 200, "{backend:?}: the genuine token works");
    let (header, claims) = parts(&session.access);
    // The server's own key, as if it had signed these: only the rules can refuse them.
    let key = server.state.keys.signer(SigningAlg::RS256).unwrap();
    let signature = session.access.rsplit('.').next().unwrap();

    let mut forged: Vec<(&str, String)> = vec![];
    let mut with_header = |what, extra: Value| {
        let mut h = header.clone();
        h.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        forged.push((what, jws(&key, h, &claims)));
    };
    with_header("an unknown critical extension (RFC 7515 §4.1.11)", json!({"crit": ["urn:example:must-understand"], "urn:example:must-understand": "1"}));
    with_header("an empty crit", json!({"crit": []}));
    with_header("typ JWT (an ID token is not an access token, RFC 9068 §4)", json!({"typ": "JWT"}));
    with_header("alg none in the header", json!({"alg": "none"}));
    let with_claims = |what, extra: Value| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        (what, jws(&key, header.clone(), &c))
    };
    forged.push(with_claims("not valid before an hour from now (nbf)", json!({"nbf": now() + 3600})));
    forged.push(with_claims("issued an hour from now (iat)", json!({"iat": now() + 3600})));
    forged.push(with_claims("no iat", json!({"iat": null})));
    forged.push(with_claims("exp as a string", json!({"exp": (now() + 600).to_string()})));
    forged.push(with_claims("expired a second ago", json!({"exp": now() - 1})));
    forged.push(with_claims("another issuer", json!({"iss": "https://evil.example"})));
    // Altered after signing, and unsigned.
    let mut altered = claims.clone();
    altered["scope"] = json!("openid profile email sesame:admin");
    forged.push(("a widened scope under the old signature", format!("{}.{}.{signature}", b64(&header), b64(&altered))));
    let mut none = header.clone();
    none["alg"] = json!("none");
    forged.push(("alg none, no signature", format!("{}.{}.", b64(&none), b64(&claims))));
    // A key sesame does not hold, claiming sesame's kid.
    let (stranger, _) = client_key("RS256");
    forged.push(("signed by a stranger under sesame's kid", jws(&stranger, header.clone(), &claims)));
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    forged.push(("HS256 (algorithm confusion)", jws(&stranger, hs, &claims)));

    let caller = &session.app;
    for (what, token) in forged {
        assert_eq!(userinfo(token.clone()).await, 401, "{backend:?}: userinfo accepted a token with {what}");
        assert_eq!(introspect(&server, caller, &token).await["active"], false, "{backend:?}: introspection called a token with {what} active");
    }
}

async fn client_assertions_are_validated_in_full(backend: Backend) {
    let server = TestServer::start(backend).await;
    let m = add_keyed_machine(&server, None, None).await;
    let token_endpoint = server.url("/token");
    let base = |jti: &str| json!({"iss": m.id, "sub": m.id, "aud": token_endpoint, "iat": now(), "exp": now() + 60, "jti": jti});
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": m.key.kid});
    let sign = |m: &KeyedMachine, header: Value, claims: Value| jws(&m.key, header, &claims);
    let refused = |assertion: String, why: &'static str| {
        let server = &server;
        async move {
            let (status, error, description) = error_body(token_with_assertion(server, &assertion).await).await;
            assert_eq!((status, error.as_str()), (401, "invalid_client"), "{why}: {description}");
            description
        }
    };

    // The audience: this server's token endpoint or issuer, alone.
    let ok = token_with_assertion(&server, &sign(&m, header.clone(), base("ok-1"))).await;
    assert_eq!(ok.status(), 200, "the token endpoint as audience");
    let ok = token_with_assertion(&server, &sign(&m, header.clone(), base("ok-2").with("aud", json!(server.base)))).await;
    assert_eq!(ok.status(), 200, "the issuer as audience");
    for (jti, aud) in [
        ("aud-1", json!(server.url("/introspect"))),
        ("aud-2", json!([token_endpoint, "https://other-as.example/token"])),
        ("aud-3", json!([])),
        ("aud-4", json!("https://other-as.example/token")),
    ] {
        let description = refused(sign(&m, header.clone(), base(jti).with("aud", aud.clone())), "audience").await;
        assert!(description.contains("audience"), "{aud}: {description}");
    }
    // Header and time rules.
    let mut crit = header.clone();
    crit["crit"] = json!(["urn:example:must-understand"]);
    refused(sign(&m, crit, base("crit")), "crit").await;
    refused(sign(&m, header.clone(), base("nbf").with("nbf", json!(now() + 600))), "nbf in the future").await;
    refused(sign(&m, header.clone(), base("iat").with("iat", json!(now() + 600))), "iat in the future").await;
    refused(sign(&m, header.clone(), base("exp").with("exp", json!("soon"))), "exp not a date").await;

    // One algorithm per key: an RSA key registered for PS256 does not verify RS256 assertions.
    let (rsa, jwks) = client_key("RS256");
    let mut jwks: Value = serde_json::from_str(&jwks).unwrap();
    jwks["keys"][0]["alg"] = json!("PS256");
    let ps = add_keyed_machine(&server, None, Some((rsa, jwks.to_string()))).await;
    let rs_header = json!({"alg": "RS256", "typ": "JWT", "kid": ps.key.kid});
    let claims = json!({"iss": ps.id, "sub": ps.id, "aud": token_endpoint, "iat": now(), "exp": now() + 60, "jti": "alg-1"});
    let description = refused(sign(&ps, rs_header, claims), "RS256 with a PS256 key").await;
    assert!(description.contains("algorithm"), "{description}");
}

trait With {
    fn with(self, name: &str, value: Value) -> Value;
}

impl With for Value {
    fn with(mut self, name: &str, value: Value) -> Value {
        self[name] = value;
        self
    }
}
