//! Who may hold which scope. Authority over sesame itself belongs to users by role and to
//! machine clients by explicit registration: a client allowed to ask for `sesame:admin` does
//! not pass it on to whoever signs in through it.

use super::scope::ADMIN_SCOPE;
use crate::store::RoleStore;

/// Holders may get the `sesame:admin` scope and use the admin API.
pub const ADMIN_ROLE: &str = "admin";
/// The roles sesame knows; anything else is a typo, refused.
pub const ROLES: [&str; 1] = [ADMIN_ROLE];

/// The scopes that only holders of a role may have, and that role.
fn role_needed(scope: &str) -> Option<&'static str> {
    (scope == ADMIN_SCOPE).then_some(ADMIN_ROLE)
}

/// `scopes` without those the user's `roles` do not allow.
pub fn allowed_scopes(scopes: &[String], roles: &[String]) -> Vec<String> {
    scopes.iter().filter(|s| role_needed(s).is_none_or(|role| roles.iter().any(|r| r == role))).cloned().collect()
}

/// `scopes` narrowed to what the user may hold; reads the roles only when a scope needs one.
pub async fn scopes_for_user(store: &dyn RoleStore, sub: &str, scopes: Vec<String>) -> Result<Vec<String>, crate::store::StoreError> {
    if scopes.iter().all(|s| role_needed(s).is_none()) {
        return Ok(scopes);
    }
    Ok(allowed_scopes(&scopes, &store.user_roles(sub).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_admin_scope_needs_the_admin_role() {
        let asked = list(&["openid", "sesame:admin", "email"]);
        assert_eq!(allowed_scopes(&asked, &[]), list(&["openid", "email"]));
        assert_eq!(allowed_scopes(&asked, &list(&["admin"])), asked);
        assert_eq!(allowed_scopes(&asked, &list(&["auditor"])), list(&["openid", "email"]));
    }
}
