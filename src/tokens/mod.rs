//! The token kinds, below the endpoints that issue and accept them: access tokens (RFC 9068
//! JWTs and their deny list), ID tokens, refresh-token families, authorization codes.

pub mod access;
pub mod code;
pub mod deny_list;
pub mod grant;
pub mod id;
pub mod refresh;

/// The scope that puts `groups` (the user's groups at their upstream identity provider, as of
/// their last sign-in there) into ID tokens, access tokens and userinfo.
pub const GROUPS_SCOPE: &str = "groups";

/// The `groups` claim of a token for `sub` with `scopes`: none without the `groups` scope.
pub async fn groups_claim(state: &crate::state::AppState, sub: &str, scopes: &[String]) -> Result<Option<Vec<String>>, crate::store::StoreError> {
    if !scopes.iter().any(|s| s == GROUPS_SCOPE) {
        return Ok(None);
    }
    Ok(Some(state.durable.user_groups(sub).await?))
}
