//! OpenID Provider metadata (OIDC Discovery) and OAuth server metadata (RFC 8414), built once
//! from the configuration and the types the server enforces, kept as pre-serialized bytes
//! (`discovery.rs` serves them).

use bytes::Bytes;
use serde::Serialize;

use crate::config::Config;
use crate::oauth::grant_type::GrantType;
use crate::paths;
use crate::crypto::alg::CLIENT_ASSERTION_ALGS;

pub struct Discovery {
    pub openid: Bytes,
    pub oauth: Bytes,
}

#[derive(Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    jwks_uri: String,
    scopes_supported: Vec<&'static str>,
    claims_supported: Vec<&'static str>,
    subject_types_supported: [&'static str; 1],
    /// ID tokens are signed with the one configured algorithm.
    id_token_signing_alg_values_supported: [&'a str; 1],
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    end_session_endpoint: String,
    /// RFC 8628 §4: where devices start the device authorization grant.
    device_authorization_endpoint: String,
    /// OpenID Connect Back-Channel Logout: logout tokens always carry `sid`.
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 2],
    code_challenge_methods_supported: [&'static str; 1],
    prompt_values_supported: [&'static str; 4],
    authorization_response_iss_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    claims_parameter_supported: bool,
    grant_types_supported: &'static [&'static str],
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 8705 §3.3: tokens of clients authenticated by certificate are bound to it.
    tls_client_certificate_bound_access_tokens: bool,
    token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    acr_values_supported: &'static [&'static str],
    /// RFC 9449 §5.1: the algorithms DPoP proofs are verified with.
    dpop_signing_alg_values_supported: &'static [&'static str],
    /// RFC 9126 §5.
    pushed_authorization_request_endpoint: String,
    require_pushed_authorization_requests: bool,
}

/// Client authentication methods the token endpoint accepts.
pub const TOKEN_ENDPOINT_AUTH_METHODS: [&str; 4] = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"];
/// Introspection is for confidential clients only.
const INTROSPECTION_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "private_key_jwt"];

/// The certificate methods (RFC 8705) work where certificates reach sesame: on its own TLS, or
/// from a trusted proxy's header; `tls_client_auth` also needs the CAs to check them against.
fn certificate_methods(config: &Config) -> Vec<&'static str> {
    let certificates_arrive = (config.tls.cert_file.is_some() && config.tls.key_file.is_some()) || config.tls.client_cert_header.is_some();
    let mut methods = Vec::new();
    if certificates_arrive && config.tls.client_ca_file.is_some() {
        methods.push("tls_client_auth");
    }
    if certificates_arrive {
        methods.push("self_signed_tls_client_auth");
    }
    methods
}

impl Discovery {
    pub fn build(config: &Config) -> Self {
        let metadata = Metadata {
            issuer: config.issuer(),
            jwks_uri: config.endpoint(paths::JWKS),
            scopes_supported: vec!["openid", "profile", "email", "offline_access", crate::tokens::GROUPS_SCOPE],
            claims_supported: vec![
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "acr",
                "name", "preferred_username", "email", "email_verified", "groups",
            ],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: [config.tokens.id_token_alg.as_str()],
            authorization_endpoint: config.endpoint(paths::AUTHORIZE),
            token_endpoint: config.endpoint(paths::TOKEN),
            userinfo_endpoint: config.endpoint(paths::USERINFO),
            end_session_endpoint: config.endpoint(paths::END_SESSION),
            device_authorization_endpoint: config.endpoint(paths::DEVICE_AUTHORIZATION),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            response_types_supported: ["code"],
            response_modes_supported: ["query", "form_post"],
            code_challenge_methods_supported: ["S256"],
            prompt_values_supported: ["none", "login", "consent", "select_account"],
            authorization_response_iss_parameter_supported: true,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            claims_parameter_supported: false,
            grant_types_supported: &GrantType::NAMES,
            token_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS.iter().copied().chain(certificate_methods(config)).collect(),
            tls_client_certificate_bound_access_tokens: !certificate_methods(config).is_empty(),
            token_endpoint_auth_signing_alg_values_supported: &CLIENT_ASSERTION_ALGS,
            introspection_endpoint: config.endpoint(paths::INTROSPECT),
            introspection_endpoint_auth_methods_supported: INTROSPECTION_AUTH_METHODS.iter().copied().chain(certificate_methods(config)).collect(),
            revocation_endpoint: config.endpoint(paths::REVOKE),
            revocation_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS.iter().copied().chain(certificate_methods(config)).collect(),
            acr_values_supported: &crate::oauth::acr::ACR_VALUES_SUPPORTED,
            dpop_signing_alg_values_supported: &crate::dpop::DPOP_ALGS,
            pushed_authorization_request_endpoint: config.endpoint(paths::PAR),
            require_pushed_authorization_requests: config.par.required,
        };
        let openid = serde_json::to_vec(&metadata).unwrap_or_default();
        // The RFC 8414 document describes the same server; it is the same metadata.
        let oauth = openid.clone();
        Self { openid: Bytes::from(openid), oauth: Bytes::from(oauth) }
    }
}
