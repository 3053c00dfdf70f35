//! Granting and removing roles of people (what each role allows is `oauth::authority`).

use serde_json::json;

use super::AdminError;
use crate::audit::{self, Event};
use crate::clock::UnixTime;
use crate::oauth::authority::ROLES;
use crate::store::Durable;

fn check_role(role: &str) -> Result<(), AdminError> {
    if ROLES.contains(&role) { Ok(()) } else { Err(AdminError::Invalid(format!("unknown role `{role}` (known: {})", ROLES.join(", ")))) }
}

/// Grants `role` to the user; true when it is new. Audited.
pub async fn grant(store: &dyn Durable, username: &str, role: &str, actor: &str, now: UnixTime) -> Result<bool, AdminError> {
    change(store, username, role, actor, now, true).await
}

/// Takes `role` from the user; true when they had it. Audited. Tokens already issued with
/// `sesame:admin` stop working at the admin API at once: it checks the role on every call.
pub async fn remove(store: &dyn Durable, username: &str, role: &str, actor: &str, now: UnixTime) -> Result<bool, AdminError> {
    change(store, username, role, actor, now, false).await
}

async fn change(store: &dyn Durable, username: &str, role: &str, actor: &str, now: UnixTime, add: bool) -> Result<bool, AdminError> {
    check_role(role)?;
    let user = store.user_by_username(username).await?.ok_or_else(|| AdminError::NotFound(format!("user {username}")))?;
    let changed = if add { store.grant_role(&user.sub, role, now).await? } else { store.remove_role(&user.sub, role).await? };
    let kind = if add { "user.role.grant" } else { "user.role.remove" };
    let event = Event { kind, subject: &user.sub, caller: Some(actor.to_string()), ok: true, reason: None, details: json!({"username": username, "role": role, "changed": changed}) };
    audit::append(store, now, event).await.map_err(|e| match e {
        crate::error::AppError::Store(e) => AdminError::Store(e),
        other => AdminError::Internal(other.to_string()),
    })?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_roles_are_granted() {
        assert!(check_role("admin").is_ok() && check_role("root").is_err());
    }
}
