//! The OAuth 2.0 protocol: one file per endpoint or grant.

pub mod access_token;
pub mod client_assertion;
pub mod client_auth;
pub mod form;
pub mod token;
