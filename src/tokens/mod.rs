//! The token kinds, below the endpoints that issue and accept them: access tokens (RFC 9068
//! JWTs and their deny list), ID tokens, refresh-token families, authorization codes.

pub mod access;
pub mod code;
pub mod deny_list;
pub mod grant;
pub mod id;
pub mod refresh;
