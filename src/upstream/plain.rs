//! A plain OAuth 2.0 provider (no OpenID Connect), through `oauth2`: the authorization URL
//! (state, PKCE S256), the code exchange, then the configured userinfo URL with the access token.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::{Map, Value};

use super::client_auth::ASSERTION_TYPE;
use super::error::UpstreamError;
use super::http::{ProviderHttp, MAX_BODY};
use super::metadata::chain;
use super::oidc::Departure;
use super::Provider;
use crate::clock::UnixTime;
use crate::config::{Config, UpstreamClientAuth};
use crate::outbound::OutboundError;

type PlainClient = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn url_error(key: &str) -> impl Fn(url::ParseError) -> UpstreamError + '_ {
    move |e| UpstreamError::Unreachable(format!("{key}: {e}"))
}

fn client(provider: &Provider, config: &Config) -> Result<PlainClient, UpstreamError> {
    let p = &provider.config;
    let auth = AuthUrl::new(p.authorization_url.clone().unwrap_or_default()).map_err(url_error("authorization_url"))?;
    let token = TokenUrl::new(p.token_url.clone().unwrap_or_default()).map_err(url_error("token_url"))?;
    let redirect = RedirectUrl::new(super::callback_url(config, &p.id)).map_err(url_error("redirect URL"))?;
    let mut client = BasicClient::new(ClientId::new(p.client_id.clone())).set_auth_uri(auth).set_token_uri(token).set_redirect_uri(redirect);
    if p.client_auth != UpstreamClientAuth::PrivateKeyJwt {
        if let Some(secret) = &p.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.0.clone()));
        }
    }
    let auth_type = if p.client_auth == UpstreamClientAuth::ClientSecretBasic { AuthType::BasicAuth } else { AuthType::RequestBody };
    Ok(client.set_auth_type(auth_type))
}

pub fn depart(provider: &Provider, config: &Config, login_hint: Option<&str>) -> Result<Departure, UpstreamError> {
    let client = client(provider, config)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge);
    for scope in provider.config.scopes() {
        request = request.add_scope(Scope::new(scope));
    }
    if let Some(hint) = login_hint {
        request = request.add_extra_param("login_hint", hint);
    }
    let (url, state) = request.url();
    Ok(Departure { url: url.to_string(), state: state.secret().clone(), nonce: None, pkce_verifier: verifier.secret().clone() })
}

/// Redeems `code`, then reads the userinfo document (a JSON object) with the access token.
pub async fn exchange(provider: &Provider, config: &Config, code: &str, pkce_verifier: &str, now: UnixTime) -> Result<Map<String, Value>, UpstreamError> {
    let client = client(provider, config)?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_string())).set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
    let assertion;
    if let Some(key) = &provider.assertion_key {
        assertion = key.assertion(&provider.config.client_id, client.token_uri().as_str(), now).map_err(UpstreamError::Unreachable)?;
        request = request.add_extra_param("client_assertion_type", ASSERTION_TYPE).add_extra_param("client_assertion", &assertion);
    }
    let token = request.request_async(&ProviderHttp(&provider.http)).await.map_err(token_error)?;
    let userinfo_url = provider.config.userinfo_url.clone().unwrap_or_default();
    let request = http::Request::get(&userinfo_url)
        .header(http::header::AUTHORIZATION, format!("Bearer {}", token.access_token().secret()))
        .header(http::header::ACCEPT, "application/json")
        // Some APIs (GitHub's) refuse requests that do not name their client.
        .header(http::header::USER_AGENT, "sesame")
        .body(Vec::new())
        .map_err(|e| UpstreamError::Unreachable(format!("userinfo_url: {e}")))?;
    let response = provider.http.send(request, MAX_BODY).await.map_err(|e| UpstreamError::Unreachable(format!("userinfo: {e}")))?;
    if !response.status().is_success() {
        return Err(UpstreamError::invalid("userinfo_invalid", format!("userinfo answered {}", response.status())));
    }
    match serde_json::from_slice(response.body()) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(UpstreamError::invalid("userinfo_invalid", "userinfo did not answer a JSON object")),
    }
}

/// A failed token request: the provider's refusal (its error code only), or no usable answer.
pub fn token_error<E: oauth2::ErrorResponse + 'static>(e: RequestTokenError<OutboundError, E>) -> UpstreamError {
    match &e {
        RequestTokenError::Request(OutboundError::Timeout | OutboundError::Request(_)) => UpstreamError::Unreachable(format!("token request: {}", chain(&e))),
        RequestTokenError::ServerResponse(_) => UpstreamError::invalid("token_request_refused", format!("token request refused: {}", chain(&e))),
        _ => UpstreamError::invalid("token_response_invalid", format!("token request: {}", chain(&e))),
    }
}
