//! Client registration: validation of what an administrator asks for, a generated secret
//! (shown once, stored hashed), secret rotation and removal.

use serde::Serialize;
use serde_json::json;

use super::{audit_event, validate_redirect_uri, AdminError};
use crate::oauth::scope::Scopes;
use crate::clock::UnixTime;
use crate::crypto::alg::SigningAlg;
use crate::oauth::grant_type::GrantType;
use crate::crypto::secrets::{generate_secret, hash_secret, random_token};
use crate::store::{AuthMethod, Client, Durable};

#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Empty: `authorization_code` and `refresh_token`.
    pub grant_types: Vec<String>,
    /// None: `openid profile email`.
    pub scope: Option<String>,
    pub auth_method: AuthMethod,
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    pub first_party: bool,
    pub access_token_alg: Option<SigningAlg>,
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub tls_client_auth_subject_dn: Option<String>,
    pub tls_client_auth_san_dns: Option<String>,
    /// Token requests must carry a DPoP proof (RFC 9449).
    pub require_dpop: bool,
    /// Authorization requests must be pushed first (RFC 9126).
    pub require_par: bool,
}

impl NewClient {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            scope: None,
            auth_method: AuthMethod::ClientSecretBasic,
            jwks_uri: None,
            jwks: None,
            first_party: false,
            access_token_alg: None,
            require_mfa: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            tls_client_auth_subject_dn: None,
            tls_client_auth_san_dns: None,
            require_dpop: false,
            require_par: false,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    /// Shown once; only its hash is stored.
    pub client_secret: Option<String>,
}

pub fn validate(spec: &NewClient) -> Result<Client, AdminError> {
    let invalid = |m: String| Err(AdminError::Invalid(m));
    if spec.name.trim().is_empty() {
        return invalid("a client needs a name".into());
    }
    let grants: Vec<GrantType> = if spec.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        let mut grants = Vec::new();
        for g in &spec.grant_types {
            let Some(grant) = GrantType::parse(g) else {
                return invalid(format!("unknown grant type `{g}` (known: {})", GrantType::NAMES.join(", ")));
            };
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        grants
    };
    let grant_types: Vec<String> = grants.iter().map(|g| g.as_str().to_string()).collect();
    for uri in spec.redirect_uris.iter().chain(&spec.post_logout_redirect_uris) {
        validate_redirect_uri(uri)?;
    }
    let uses_code = grants.contains(&GrantType::AuthorizationCode);
    if uses_code && spec.redirect_uris.is_empty() {
        return invalid("the authorization_code grant needs at least one --redirect-uri".into());
    }
    if spec.auth_method == AuthMethod::None && grants.iter().any(|g| !matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken | GrantType::DeviceCode)) {
        return invalid("a public client (auth method none) may only use authorization_code, refresh_token and the device grant".into());
    }
    match (spec.auth_method, &spec.jwks_uri, &spec.jwks) {
        (AuthMethod::PrivateKeyJwt, None, None) => return invalid("private_key_jwt needs --jwks-uri or --jwks".into()),
        (AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth, Some(_), Some(_)) => return invalid("give --jwks-uri or --jwks, not both".into()),
        (AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth, _, _) => {}
        (_, None, None) => {}
        _ => return invalid("--jwks-uri and --jwks are for private_key_jwt and self_signed_tls_client_auth clients".into()),
    }
    if let Some(uri) = &spec.jwks_uri {
        if !uri.starts_with("https://") && validate_redirect_uri(uri).is_err() {
            return invalid(format!("jwks_uri `{uri}` must be https (or http on loopback)"));
        }
    }
    if let Some(jwks) = &spec.jwks {
        let parsed: Result<jsonwebtoken::jwk::JwkSet, _> = serde_json::from_str(jwks);
        if parsed.map(|s| s.keys.is_empty()).unwrap_or(true) {
            return invalid("--jwks must be a JWK Set with at least one key".into());
        }
    }
    if let Some(uri) = &spec.backchannel_logout_uri {
        // OIDC Back-Channel Logout §2.2: an absolute URI, no fragment; as redirect URIs, https
        // except on loopback.
        let url = url::Url::parse(uri).map_err(|_| AdminError::Invalid(format!("backchannel_logout_uri `{uri}` is not an absolute URI")))?;
        if url.fragment().is_some() || !matches!(url.scheme(), "https" | "http") || (url.scheme() == "http" && validate_redirect_uri(uri).is_err()) {
            return invalid(format!("backchannel_logout_uri `{uri}` must be https (or http on loopback), without a fragment"));
        }
    } else if spec.backchannel_logout_session_required {
        return invalid("backchannel_logout_session_required needs a backchannel_logout_uri".into());
    }
    match spec.auth_method {
        AuthMethod::TlsClientAuth => {
            let names = spec.tls_client_auth_subject_dn.is_some() as u8 + spec.tls_client_auth_san_dns.is_some() as u8;
            if names != 1 {
                return invalid("tls_client_auth needs exactly one of --tls-subject-dn and --tls-san-dns".into());
            }
            if let Some(dn) = &spec.tls_client_auth_subject_dn {
                crate::oauth::client_certificate::normalise_dn(dn).map_err(AdminError::Invalid)?;
            }
        }
        AuthMethod::SelfSignedTlsClientAuth if spec.jwks.is_none() && spec.jwks_uri.is_none() => {
            return invalid("self_signed_tls_client_auth needs --jwks or --jwks-uri (keys with x5c)".into());
        }
        _ if spec.tls_client_auth_subject_dn.is_some() || spec.tls_client_auth_san_dns.is_some() => {
            return invalid("--tls-subject-dn and --tls-san-dns go with --auth-method tls_client_auth".into());
        }
        _ => {}
    }
    if spec.require_par && !uses_code {
        return invalid("--require-par is for clients of the authorization_code grant".into());
    }
    let scopes = Scopes::parse(spec.scope.as_deref().unwrap_or("openid profile email"))?.into_vec();
    Ok(Client {
        id: random_token(16),
        name: spec.name.trim().to_string(),
        secret_hash: None,
        auth_method: spec.auth_method,
        redirect_uris: spec.redirect_uris.clone(),
        post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
        grant_types,
        scopes,
        jwks_uri: spec.jwks_uri.clone(),
        jwks: spec.jwks.clone(),
        first_party: spec.first_party,
        access_token_alg: spec.access_token_alg,
        access_token_ttl: None,
        created_at: 0,
        require_mfa: spec.require_mfa,
        backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: spec.backchannel_logout_session_required,
        tls_client_auth_subject_dn: spec.tls_client_auth_subject_dn.clone(),
        tls_client_auth_san_dns: spec.tls_client_auth_san_dns.clone(),
        require_dpop: spec.require_dpop,
        require_par: spec.require_par,
    })
}

/// Registers a client; `actor` is who asked (`cli`, an admin client's id, `user:SUB`), for the
/// audit trail.
pub async fn add(store: &dyn Durable, spec: &NewClient, actor: &str, now: UnixTime) -> Result<CreatedClient, AdminError> {
    let mut client = validate(spec)?;
    client.created_at = now;
    let secret = client.auth_method.uses_secret().then(generate_secret);
    client.secret_hash = secret.as_deref().map(hash_secret);
    let details = json!({"name": client.name, "auth_method": client.auth_method.as_str(), "grant_types": client.grant_types, "scopes": client.scopes});
    store.insert_client(&client, &audit_event("client.add", &client.id, actor, now, details)).await?;
    Ok(CreatedClient { client, client_secret: secret })
}

/// Every client, oldest first (a `Client` never serializes its secret hash).
pub async fn list(store: &dyn Durable) -> Result<Vec<Client>, AdminError> {
    Ok(store.clients().await?)
}

pub async fn show(store: &dyn Durable, id: &str) -> Result<Client, AdminError> {
    store.client(id).await?.ok_or_else(|| AdminError::NotFound(format!("client {id}")))
}

/// Removes a client. A node that cached it forgets it within a second; the front end that
/// removed it should invalidate its own cache at once.
pub async fn remove(store: &dyn Durable, id: &str, actor: &str, now: UnixTime) -> Result<(), AdminError> {
    if store.delete_client(id, &audit_event("client.remove", id, actor, now, json!({}))).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("client {id}")))
    }
}

/// Issues a new secret; the old one stops working at once (within a second on nodes that cached
/// the client).
pub async fn rotate_secret(store: &dyn Durable, id: &str, actor: &str, now: UnixTime) -> Result<String, AdminError> {
    let client = show(store, id).await?;
    if !client.auth_method.uses_secret() {
        return Err(AdminError::Invalid(format!("client {id} authenticates with {}, not a secret", client.auth_method.as_str())));
    }
    let secret = generate_secret();
    if !store.set_client_secret_hash(id, &hash_secret(&secret), &audit_event("client.rotate_secret", id, actor, now, json!({}))).await? {
        return Err(AdminError::NotFound(format!("client {id}")));
    }
    Ok(secret)
}
