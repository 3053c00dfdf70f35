//! The OAuth 2.0 protocol: one file per endpoint or grant.

pub mod acr;
pub mod authority;
pub mod authorize;
pub mod bearer;
pub mod client_assertion;
pub mod client_auth;
pub mod client_certificate;
pub mod client_jwks;
pub mod device;
pub mod form;
pub mod grant_type;
pub mod introspect;
pub mod par;
pub mod revoke;
pub mod scope;
pub mod token;
