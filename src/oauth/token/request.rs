//! The token request, parsed once: one variant per grant, its parameters as fields
//! (RFC 6749 §4.1.3, §4.4.2, §6; RFC 8707 §2; RFC 8693 §2.1). The grants never read the form.

use crate::api_keys::TOKEN_TYPE as API_KEY_TOKEN_TYPE;
use crate::error::OAuthError;
use crate::oauth::form::OAuthForm;
use crate::oauth::grant_type::GrantType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    AuthorizationCode(CodeRequest),
    RefreshToken(RefreshRequest),
    ClientCredentials(ClientCredentialsRequest),
    TokenExchange(ExchangeRequest),
    DeviceCode(DeviceCodeRequest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    pub refresh_token: String,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    pub scope: Option<String>,
    pub resources: Vec<String>,
}

/// RFC 8628 §3.4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRequest {
    pub device_code: String,
}

/// The only subject this server exchanges is an API key, which authenticates itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest {
    pub subject_token: String,
    pub requested_token_type: Option<String>,
    pub scope: Option<String>,
    pub resources: Vec<String>,
    pub audience: Option<String>,
}

impl TokenRequest {
    pub fn parse(form: &OAuthForm) -> Result<Self, OAuthError> {
        let grant_type = form.require("grant_type")?;
        let Some(grant) = GrantType::parse(grant_type) else {
            return Err(OAuthError::unsupported_grant_type(format!("grant_type `{grant_type}` is not supported")));
        };
        let optional = |name: &str| form.get(name).map(str::to_string);
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode(CodeRequest {
                code: form.require("code")?.to_string(),
                redirect_uri: optional("redirect_uri"),
                code_verifier: optional("code_verifier"),
            }),
            GrantType::RefreshToken => Self::RefreshToken(RefreshRequest { refresh_token: form.require("refresh_token")?.to_string(), scope: optional("scope") }),
            GrantType::ClientCredentials => Self::ClientCredentials(ClientCredentialsRequest { scope: optional("scope"), resources: form.resources().to_vec() }),
            GrantType::DeviceCode => Self::DeviceCode(DeviceCodeRequest { device_code: form.require("device_code")?.to_string() }),
            GrantType::TokenExchange => {
                if form.get("subject_token_type") != Some(API_KEY_TOKEN_TYPE) {
                    return Err(OAuthError::invalid_request(format!("subject_token_type must be {API_KEY_TOKEN_TYPE}")));
                }
                Self::TokenExchange(ExchangeRequest {
                    subject_token: form.require("subject_token")?.to_string(),
                    requested_token_type: optional("requested_token_type"),
                    scope: optional("scope"),
                    resources: form.resources().to_vec(),
                    audience: optional("audience"),
                })
            }
        })
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
            Self::TokenExchange(_) => GrantType::TokenExchange,
            Self::DeviceCode(_) => GrantType::DeviceCode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&OAuthForm::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn each_grant_becomes_its_variant_with_its_parameters() {
        assert_eq!(
            parse("grant_type=authorization_code&code=c&code_verifier=v").unwrap(),
            TokenRequest::AuthorizationCode(CodeRequest { code: "c".into(), redirect_uri: None, code_verifier: Some("v".into()) })
        );
        assert_eq!(
            parse("grant_type=refresh_token&refresh_token=r&scope=a").unwrap(),
            TokenRequest::RefreshToken(RefreshRequest { refresh_token: "r".into(), scope: Some("a".into()) })
        );
        assert_eq!(
            parse("grant_type=client_credentials&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap(),
            TokenRequest::ClientCredentials(ClientCredentialsRequest { scope: None, resources: vec!["https://a".into(), "https://b".into()] })
        );
        assert_eq!(
            parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=d").unwrap(),
            TokenRequest::DeviceCode(DeviceCodeRequest { device_code: "d".into() })
        );
        let exchange = format!("grant_type={}&subject_token=k&subject_token_type={}", GrantType::TokenExchange, API_KEY_TOKEN_TYPE);
        assert!(matches!(parse(&exchange).unwrap(), TokenRequest::TokenExchange(ExchangeRequest { subject_token, .. }) if subject_token == "k"));
    }

    #[test]
    fn what_a_grant_requires_is_required() {
        for (body, code) in [
            ("", "invalid_request"),
            ("grant_type=password&username=a", "unsupported_grant_type"),
            ("grant_type=authorization_code", "invalid_request"),
            ("grant_type=authorization_code&code=", "invalid_request"),
            ("grant_type=refresh_token", "invalid_request"),
            ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code", "invalid_request"),
            ("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=k", "invalid_request"),
        ] {
            assert_eq!(parse(body).unwrap_err().code, code, "{body:?}");
        }
    }
}
