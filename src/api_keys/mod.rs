//! API keys for servers that cannot speak OAuth: issued, scoped, expiring, network-bound,
//! rate-limited, revocable, rotated with grace, and audited.

pub mod cache;
pub mod format;
pub mod usage;
pub mod verify;

pub use verify::{verify, Rejection, VerifiedKey};

/// `subject_token_type` for exchanging an API key for an access token (RFC 8693).
pub const TOKEN_TYPE: &str = "urn:sesame:params:oauth:token-type:api_key";
