//! What a user granted a client at sign-in: who, to which client, which scopes, and the sign-in
//! it rests on. One value, made once when the code is issued and carried through the code into
//! every token issued from it (access, ID, refresh), instead of field-by-field copies.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub client_id: String,
    pub sub: String,
    pub scopes: Vec<String>,
    /// When the user signed in (OIDC `auth_time`).
    pub auth_time: UnixTime,
    /// The SSO session (OIDC `sid`).
    pub sid: String,
    /// How the user signed in (RFC 8176).
    pub amr: Vec<String>,
}

impl Grant {
    pub fn includes(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}
