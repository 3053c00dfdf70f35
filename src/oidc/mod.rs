//! OpenID Connect endpoints: discovery, the JWKS, ID tokens, userinfo and RP-initiated logout.

pub mod discovery;
pub mod end_session;
pub mod jwks;
pub mod metadata;
pub mod userinfo;
