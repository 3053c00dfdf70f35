//! An OpenID Connect provider, through `openidconnect`: the authorization URL (state, nonce,
//! PKCE S256), then the code exchange, the ID token's validation (signature, issuer, audience,
//! expiry, nonce, `at_hash`) and userinfo (whose `sub` must be the ID token's).

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client_auth::ASSERTION_TYPE;
use super::error::UpstreamError;
use super::http::ProviderHttp;
use super::metadata::{chain, Metadata};
use super::Provider;
use crate::clock::UnixTime;
use crate::config::{Config, UpstreamClientAuth};

/// Every claim beyond the standard ones (`groups`, `amr`, whatever the mapping names), kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherClaims(HashMap<String, Value>);

impl AdditionalClaims for OtherClaims {}

type IdFields = IdTokenFields<OtherClaims, EmptyExtraTokenFields, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type ProviderTokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    ProviderTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Where the browser goes, and what the callback will need.
pub struct Departure {
    pub url: String,
    pub state: String,
    pub nonce: Option<String>,
    pub pkce_verifier: String,
}

fn client(provider: &Provider, metadata: &Metadata, config: &Config) -> Result<OidcClient, UpstreamError> {
    let p = &provider.config;
    let secret = match p.client_auth {
        UpstreamClientAuth::PrivateKeyJwt => None,
        _ => p.client_secret.as_ref().map(|s| ClientSecret::new(s.0.clone())),
    };
    let redirect = RedirectUrl::new(super::callback_url(config, &p.id)).map_err(|e| UpstreamError::Unreachable(format!("redirect URL: {e}")))?;
    let auth_type = if p.client_auth == UpstreamClientAuth::ClientSecretBasic { AuthType::BasicAuth } else { AuthType::RequestBody };
    Ok(OidcClient::from_provider_metadata(metadata.clone(), ClientId::new(p.client_id.clone()), secret).set_redirect_uri(redirect).set_auth_type(auth_type))
}

async fn metadata(provider: &Provider, stale_key: bool) -> Result<std::sync::Arc<Metadata>, UpstreamError> {
    let issuer = provider.config.issuer.as_deref().unwrap_or_default();
    provider.metadata.get(issuer, &provider.http, stale_key).await
}

pub async fn depart(provider: &Provider, config: &Config, login_hint: Option<&str>) -> Result<Departure, UpstreamError> {
    let metadata = metadata(provider, false).await?;
    let client = client(provider, &metadata, config)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge);
    // `openidconnect` adds `openid` itself.
    for scope in provider.config.scopes().into_iter().filter(|s| s != "openid") {
        request = request.add_scope(Scope::new(scope));
    }
    if let Some(hint) = login_hint {
        request = request.set_login_hint(LoginHint::new(hint.to_string()));
    }
    let (url, state, nonce) = request.url();
    Ok(Departure { url: url.to_string(), state: state.secret().clone(), nonce: Some(nonce.secret().clone()), pkce_verifier: verifier.secret().clone() })
}

/// RFC 9207: a provider that names itself in its responses must name itself, not another.
pub async fn check_iss_parameter(provider: &Provider, iss: Option<&str>) -> Result<(), UpstreamError> {
    let metadata = metadata(provider, false).await?;
    match iss {
        Some(iss) if iss != metadata.issuer().as_str() => Err(UpstreamError::invalid("wrong_issuer", "the authorization response names another issuer (iss)")),
        None if metadata.additional_metadata().authorization_response_iss_parameter_supported => {
            Err(UpstreamError::invalid("wrong_issuer", "the authorization response lacks the iss parameter the provider promises"))
        }
        _ => Ok(()),
    }
}

/// Redeems `code` and returns the validated ID token's claims, with userinfo's where the ID
/// token has none of its own.
pub async fn exchange(provider: &Provider, config: &Config, code: &str, nonce: &str, pkce_verifier: &str, now: UnixTime) -> Result<Map<String, Value>, UpstreamError> {
    let http = ProviderHttp(&provider.http);
    let mut metadata = metadata(provider, false).await?;
    let mut client = client(provider, &metadata, config)?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| UpstreamError::Unreachable(format!("the provider has no token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
    let assertion;
    if let Some(key) = &provider.assertion_key {
        let token_url = metadata.token_endpoint().map(|u| u.to_string()).unwrap_or_default();
        assertion = key.assertion(&provider.config.client_id, &token_url, now).map_err(UpstreamError::Unreachable)?;
        request = request.add_extra_param("client_assertion_type", ASSERTION_TYPE).add_extra_param("client_assertion", &assertion);
    }
    let response = request.request_async(&http).await.map_err(super::plain::token_error)?;
    let id_token = response.id_token().ok_or_else(|| UpstreamError::invalid("no_id_token", "the token response has no ID token"))?;
    let nonce = Nonce::new(nonce.to_string());
    let first = id_token.claims(&client.id_token_verifier(), &nonce).map(|_| ());
    // A key we do not know yet: the provider may have rotated. Fetch its keys again, once.
    if let Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) = first {
        metadata = self::metadata(provider, true).await?;
        client = self::client(provider, &metadata, config)?;
    }
    let verified = id_token.claims(&client.id_token_verifier(), &nonce);
    let verifier = client.id_token_verifier();
    let claims = verified.map_err(id_token_error)?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|e| UpstreamError::invalid("id_token_invalid", e))?;
        let key = id_token.signing_key(&verifier).map_err(|e| UpstreamError::invalid("id_token_invalid", e))?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key).map_err(|e| UpstreamError::invalid("id_token_invalid", e))?;
        if actual != *expected {
            return Err(UpstreamError::invalid("id_token_at_hash", "the ID token's at_hash does not match the access token"));
        }
    }
    let mut merged = as_object(serde_json::to_value(claims))?;
    if let Ok(request) = client.user_info(response.access_token().clone(), Some(claims.subject().clone())) {
        let info: openidconnect::UserInfoClaims<OtherClaims, CoreGenderClaim> =
            request.request_async(&http).await.map_err(|e| UpstreamError::invalid("userinfo_invalid", chain(&e)))?;
        for (name, value) in as_object(serde_json::to_value(info))? {
            merged.entry(name).or_insert(value);
        }
    }
    Ok(merged)
}

fn as_object(value: serde_json::Result<Value>) -> Result<Map<String, Value>, UpstreamError> {
    match value {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(UpstreamError::invalid("claims_unreadable", "the claims are not a JSON object")),
    }
}

fn id_token_error(e: ClaimsVerificationError) -> UpstreamError {
    let reason = match &e {
        ClaimsVerificationError::InvalidNonce(_) => "id_token_nonce",
        ClaimsVerificationError::InvalidIssuer(_) => "id_token_issuer",
        ClaimsVerificationError::InvalidAudience(_) => "id_token_audience",
        ClaimsVerificationError::Expired(_) => "id_token_expired",
        ClaimsVerificationError::SignatureVerification(_) => "id_token_signature",
        _ => "id_token_invalid",
    };
    UpstreamError::invalid(reason, format!("ID token refused: {}", chain(&e)))
}
