//! The grant types this server implements: one list, used by the token endpoint's dispatch,
//! client registration and discovery, so none of them can name a grant the others do not know.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// RFC 8693; here only to exchange an API key for a short-lived JWT.
    TokenExchange,
    /// RFC 8628: a device without a browser polls while its user approves elsewhere.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials, Self::TokenExchange, Self::DeviceCode];

    /// The registered name (RFC 6749 §4, RFC 8693 §2.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// A short fixed label for metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Self::TokenExchange => "token_exchange",
            Self::DeviceCode => "device_code",
            other => other.as_str(),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Every name, for discovery (`grant_types_supported`).
    pub const NAMES: [&'static str; 5] = [
        Self::ALL[0].as_str(),
        Self::ALL[1].as_str(),
        Self::ALL[2].as_str(),
        Self::ALL[3].as_str(),
        Self::ALL[4].as_str(),
    ];
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::NAMES.len(), GrantType::ALL.len());
        for bad in ["", "password", "implicit", "AUTHORIZATION_CODE", "authorization_code "] {
            assert_eq!(GrantType::parse(bad), None, "{bad:?}");
        }
    }
}
