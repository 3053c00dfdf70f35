//! Mutual TLS client authentication (RFC 8705 §2) over real TLS: sesame terminates TLS itself
//! (certificates made per test by rcgen) and asks for, without requiring, a client certificate;
//! a `tls_client_auth` client is the holder of a certificate from the configured CA naming its
//! registered subject; a `self_signed_tls_client_auth` client is the holder of the certificate in
//! its registered JWKS. Behind a TLS-terminating proxy the certificate arrives in a header, which
//! is believed only from `trusted_proxies`. Discovery lists the methods only where they work.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use serde_json::{json, Value};
use sesame::admin::clients::{self, NewClient};
use sesame::config::{Config, TrustedProxies};
use sesame::store::AuthMethod;

use crate::support::harness::{environment, Need, Tests};
use crate::support::{http, test_config, Backend, TestServer};

pub fn tests(t: &mut Tests) {
    t.each_backend("mtls_clients_authenticate_with_their_certificate_and_nothing_else", mtls_clients_authenticate_with_their_certificate_and_nothing_else)
        .test("a_proxys_certificate_header_is_believed_only_from_a_trusted_proxy", a_proxys_certificate_header_is_believed_only_from_a_trusted_proxy)
        .each_backend("a_public_clients_tokens_are_bound_to_the_certificate_it_came_with", a_public_clients_tokens_are_bound_to_the_certificate_it_came_with)
        .each_backend_needing(&[Need::Python], "python_httpx_with_cryptography_certificates_drives_both_methods_and_a_bound_token", python_httpx_with_cryptography_certificates_drives_both_methods_and_a_bound_token);
}

struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Issued {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert.pem(), self.key.serialize_pem()).as_bytes()).unwrap()
    }
}

fn ca(name: &str) -> Issued {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Issued { cert: params.self_signed(&key).unwrap(), key }
}

fn client_cert(cn: &str, org: &str, dns: &[&str], issuer: Option<&Issued>) -> Issued {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::OrganizationName, org);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, &ca.cert, &ca.key).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Issued { cert, key }
}

/// Writes the server's certificate (for `localhost`, from `ca`) and the client CA to `dir`; sets
/// the TLS settings of `config`.
fn tls_files(dir: &std::path::Path, ca: &Issued, config: &mut Config) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let server = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("client-ca.pem"), ca.cert.pem()).unwrap();
    config.tls.cert_file = Some(dir.join("server.pem"));
    config.tls.key_file = Some(dir.join("server.key"));
    config.tls.client_ca_file = Some(dir.join("client-ca.pem"));
}

async fn register(server: &TestServer, name: &str, method: AuthMethod, tweak: impl FnOnce(&mut NewClient)) -> String {
    let mut spec = NewClient::new(name);
    spec.auth_method = method;
    spec.grant_types = vec!["client_credentials".into()];
    spec.scope = Some("reports:read".into());
    tweak(&mut spec);
    clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap().client.id
}

/// A `client_credentials` request for `client_id` over a connection presenting `identity`.
async fn token(server: &TestServer, ca: &Issued, identity: Option<reqwest::Identity>, client_id: &str) -> (u16, Value) {
    let mut builder = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap()).use_rustls_tls();
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    let res = builder.build().unwrap().post(server.url("/token")).form(&[("grant_type", "client_credentials"), ("client_id", client_id)]).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn mtls_clients_authenticate_with_their_certificate_and_nothing_else(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let authority = ca("Example Corp Client CA");
    let server = TestServer::start_with(backend, |c| {
        c.issuer = "https://localhost".into();
        tls_files(dir.path(), &authority, c)
    })
    .await;
    assert!(server.base.starts_with("https://localhost:"), "{}", server.base);
    let billing = client_cert("billing", "Example Corp", &["billing.internal.example"], Some(&authority));
    let impostor = client_cert("billing", "Example Corp", &[], Some(&ca("Another CA")));
    let own = client_cert("reports-cli", "Example Corp", &[], None);

    let by_dn = register(&server, "Billing", AuthMethod::TlsClientAuth, |s| s.tls_client_auth_subject_dn = Some("CN=Billing, O=Example Corp".into())).await;
    let by_san = register(&server, "Billing (SAN)", AuthMethod::TlsClientAuth, |s| s.tls_client_auth_san_dns = Some("billing.internal.example".into())).await;
    // The certificate's own P-256 key (an uncompressed point: 0x04, x, y), with the certificate.
    let point = own.key.public_key_raw();
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64url(&point[1..33]), "y": b64url(&point[33..65]), "x5c": [STANDARD.encode(own.cert.der())]}]});
    let self_signed = register(&server, "Reports CLI", AuthMethod::SelfSignedTlsClientAuth, |s| s.jwks = Some(jwks.to_string())).await;

    for (label, client) in [("subject DN", &by_dn), ("DNS name", &by_san)] {
        let (status, body) = token(&server, &authority, Some(billing.identity()), client).await;
        assert_eq!(status, 200, "{backend:?}: the CA's certificate naming the registered {label}: {body}");
        assert!(body["access_token"].is_string());
    }
    let (status, body) = token(&server, &authority, None, &by_dn).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "no certificate");
    let (status, _) = token(&server, &authority, Some(impostor.identity()), &by_dn).await;
    assert_eq!(status, 401, "the same subject from another CA");
    let (status, _) = token(&server, &authority, Some(own.identity()), &by_dn).await;
    assert_eq!(status, 401, "a self-signed certificate for a tls_client_auth client");
    let other_name = register(&server, "Payroll", AuthMethod::TlsClientAuth, |s| s.tls_client_auth_subject_dn = Some("CN=payroll,O=Example Corp".into())).await;
    let (status, _) = token(&server, &authority, Some(billing.identity()), &other_name).await;
    assert_eq!(status, 401, "the CA's certificate for another subject");

    let (status, body) = token(&server, &authority, Some(own.identity()), &self_signed).await;
    assert_eq!(status, 200, "{backend:?}: the registered self-signed certificate: {body}");
    let (status, _) = token(&server, &authority, Some(billing.identity()), &self_signed).await;
    assert_eq!(status, 401, "a CA-issued certificate that is not the registered one");

    // The token is bound to the certificate (RFC 8705 §3): shown by introspection, and sesame's
    // own API takes it only over a connection presenting that certificate.
    let admin = register(&server, "Billing admin", AuthMethod::TlsClientAuth, |s| {
        s.tls_client_auth_san_dns = Some("billing.internal.example".into());
        s.scope = Some("sesame:admin".into());
    })
    .await;
    let (status, body) = token(&server, &authority, Some(billing.identity()), &admin).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(billing.cert.der()));
    assert_eq!(crate::support::sso::jwt_claims(&access)["cnf"]["x5t#S256"], thumbprint.as_str());
    let over = |identity: Option<reqwest::Identity>| {
        let mut builder = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(authority.cert.pem().as_bytes()).unwrap()).use_rustls_tls();
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder.build().unwrap()
    };
    let call = |client: reqwest::Client| {
        let (url, access) = (server.url("/admin/api-keys"), access.clone());
        async move { client.get(url).bearer_auth(access).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(over(Some(billing.identity()))).await, 200, "{backend:?}: the token over its certificate's connection");
    assert_eq!(call(over(None)).await, 401, "{backend:?}: a stolen certificate-bound token without the certificate");
    assert_eq!(call(over(Some(own.identity()))).await, 401, "{backend:?}: ... or with another certificate");
    let introspected: Value = over(Some(billing.identity()))
        .post(server.url("/introspect"))
        .form(&[("token", access.as_str()), ("client_id", admin.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["cnf"]["x5t#S256"], thumbprint.as_str(), "{introspected}");

    let ca_roots = reqwest::Certificate::from_pem(authority.cert.pem().as_bytes()).unwrap();
    let https = reqwest::Client::builder().add_root_certificate(ca_roots).use_rustls_tls().build().unwrap();
    let discovery: Value = https.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let methods = discovery["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("tls_client_auth")) && methods.contains(&json!("self_signed_tls_client_auth")), "{methods:?}");
    assert_eq!(discovery["tls_client_certificate_bound_access_tokens"], true);
    server.stop().await;
}

async fn a_proxys_certificate_header_is_believed_only_from_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let authority = ca("Example Corp Client CA");
    std::fs::write(dir.path().join("client-ca.pem"), authority.cert.pem()).unwrap();
    let billing = client_cert("billing", "Example Corp", &[], Some(&authority));
    // As nginx's $ssl_client_escaped_cert: percent-encoded, a space as %20.
    let escaped: String = url::form_urlencoded::byte_serialize(billing.cert.pem().as_bytes()).collect::<String>().replace('+', "%20");
    for (trusted, expected) in [(true, 200), (false, 401)] {
        let ca_file = dir.path().join("client-ca.pem");
        let server = TestServer::start_with(Backend::Embedded, |c| {
            c.tls.client_ca_file = Some(ca_file);
            c.tls.client_cert_header = Some("X-SSL-Client-Cert".into());
            c.trusted_proxies = TrustedProxies::parse(if trusted { &["127.0.0.1/32"][..] } else { &[][..] }).unwrap();
        })
        .await;
        let client = register(&server, "Billing", AuthMethod::TlsClientAuth, |s| s.tls_client_auth_subject_dn = Some("CN=billing,O=Example Corp".into())).await;
        let res = http()
            .post(server.url("/token"))
            .header("X-SSL-Client-Cert", &escaped)
            .form(&[("grant_type", "client_credentials"), ("client_id", client.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), expected, "header from a {} peer", if trusted { "trusted" } else { "untrusted" });
        let discovery: Value = http().get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        assert!(discovery["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("tls_client_auth")));
        server.stop().await;
    }
    let plain = TestServer::start_with(Backend::Embedded, |_| {}).await;
    let discovery: Value = http().get(plain.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(!discovery["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("tls_client_auth")), "no certificates reach a plain server");
    let _ = test_config;
}

/// RFC 8705 §4: a public client has no credentials, but a certificate it presents binds its access
/// token and its refresh-token family; a refresh without that certificate (a stolen refresh token)
/// is refused and leaves the holder's token usable. The certificate arrives as a trusted proxy's
/// header here; the binding is the same as over sesame's own TLS.
async fn a_public_clients_tokens_are_bound_to_the_certificate_it_came_with(backend: Backend) {
    use crate::support::sso::{authorize_url, jwt_claims, pkce, query_param, sign_in, add_user, Browser, TestClient};
    let server = TestServer::start_with(backend, |c| {
        c.tls.client_cert_header = Some("X-SSL-Client-Cert".into());
        c.trusted_proxies = TrustedProxies::parse(&["127.0.0.1/32"]).unwrap();
    })
    .await;
    add_user(&server, "alice").await;
    let mut spec = NewClient::new("Desktop app");
    spec.redirect_uris = vec!["http://127.0.0.1:9/desktop/callback".into()];
    spec.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    spec.auth_method = AuthMethod::None;
    spec.first_party = true;
    let id = clients::add(server.state.durable.as_ref(), &spec, "test", server.state.now()).await.unwrap().client.id;
    let app = TestClient { id, secret: None, redirect_uri: spec.redirect_uris[0].clone() };
    let escaped = |c: &Issued| url::form_urlencoded::byte_serialize(c.cert.pem().as_bytes()).collect::<String>().replace('+', "%20");
    let device = client_cert("laptop-42", "Example Corp", &[], None);
    let other = client_cert("laptop-43", "Example Corp", &[], None);
    let post = |form: Vec<(&'static str, String)>, cert: Option<&Issued>| {
        let mut request = http().post(server.url("/token")).form(&form);
        if let Some(cert) = cert {
            request = request.header("X-SSL-Client-Cert", escaped(cert));
        }
        async move {
            let res = request.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };

    let p = pkce();
    let callback = sign_in(&Browser::new(), &server, &authorize_url(&server, &app, &p, &[]), "alice").await;
    let code = query_param(&callback, "code").unwrap();
    let redeem = vec![("grant_type", "authorization_code".to_string()), ("code", code), ("redirect_uri", app.redirect_uri.clone()), ("code_verifier", p.verifier.clone()), ("client_id", app.id.clone())];
    let (status, tokens) = post(redeem, Some(&device)).await;
    assert_eq!(status, 200, "{tokens}");
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(device.cert.der()));
    assert_eq!(jwt_claims(tokens["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], thumbprint.as_str(), "{backend:?}: the access token is bound");
    let refresh_form = |token: &str| vec![("grant_type", "refresh_token".to_string()), ("refresh_token", token.to_string()), ("client_id", app.id.clone())];
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    for (cert, label) in [(None, "without a certificate"), (Some(&other), "with another certificate")] {
        let (status, body) = post(refresh_form(&refresh_token), cert).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{backend:?}: a stolen refresh token {label}: {body}");
    }
    let (status, rotated) = post(refresh_form(&refresh_token), Some(&device)).await;
    assert_eq!(status, 200, "{backend:?}: the holder's token still works, with its certificate: {rotated}");
    assert_eq!(jwt_claims(rotated["access_token"].as_str().unwrap())["cnf"]["x5t#S256"], thumbprint.as_str());
    let (status, _) = post(refresh_form(rotated["refresh_token"].as_str().unwrap()), None).await;
    assert_eq!(status, 400, "{backend:?}: the successor is bound too");
    server.stop().await;
}

/// `tests/python/mtls_client.py` with `args`; its standard output.
fn python_client(args: &[&str]) -> String {
    let python = environment().python.clone().expect("declared Need::Python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/mtls_client.py");
    let out = std::process::Command::new(python).arg(script).args(args).output().expect("run python");
    assert!(out.status.success(), "mtls_client.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A client written with tools we did not write: certificates from Python's `cryptography`,
/// requests from `httpx` over TLS. Both methods, each refusing the other's certificate and none,
/// and the bound token taken by the admin API only over its certificate's connection.
async fn python_httpx_with_cryptography_certificates_drives_both_methods_and_a_bound_token(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    python_client(&["make", &path]);
    let files = dir.path().to_path_buf();
    let server = TestServer::start_with(backend, move |c| {
        c.issuer = "https://localhost".into();
        c.tls.cert_file = Some(files.join("server.pem"));
        c.tls.key_file = Some(files.join("server.key"));
        c.tls.client_ca_file = Some(files.join("ca.pem"));
    })
    .await;
    let billing = register(&server, "Billing", AuthMethod::TlsClientAuth, |s| {
        s.tls_client_auth_subject_dn = Some("CN=billing,O=Example Corp".into());
        s.scope = Some("sesame:admin".into());
    })
    .await;
    let jwks = std::fs::read_to_string(dir.path().join("reports-cli.jwks.json")).unwrap();
    let own = register(&server, "Reports CLI", AuthMethod::SelfSignedTlsClientAuth, |s| s.jwks = Some(jwks)).await;
    let out: Value = serde_json::from_str(&python_client(&["run", &path, &server.base, &billing, &own])).unwrap();
    assert_eq!(
        out,
        json!({
            "billing": [200, "Bearer"],
            "billing_without_certificate": 401,
            "billing_with_the_self_signed": 401,
            "self_signed": 200,
            "self_signed_with_the_ca_issued": 401,
            "api_with_its_certificate": 200,
            "api_without_a_certificate": 401,
            "api_with_another_certificate": 401,
        }),
        "{backend:?}"
    );
    server.stop().await;
}
