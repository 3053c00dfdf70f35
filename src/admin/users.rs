//! User accounts: creation with an Argon2id password, password changes, disabling (which ends
//! the user's sessions).

use super::AdminError;
use crate::clock::UnixTime;
use crate::crypto::password::Passwords;
use crate::crypto::secrets::random_token;
use crate::session::{EndReason, EndedSession, SessionEnder};
use crate::store::{Durable, StoreError, User};

const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_BYTES: usize = 1024;

pub fn check_password(password: &str) -> Result<(), AdminError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AdminError::Invalid(format!("a password needs at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AdminError::Invalid(format!("a password may have at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

pub fn check_username(username: &str) -> Result<(), AdminError> {
    let ok = !username.is_empty()
        && username.len() <= 128
        && username.chars().all(|c| c.is_alphanumeric() || "._@-+".contains(c));
    if ok { Ok(()) } else { Err(AdminError::Invalid(format!("username `{username}` may hold only letters, digits and . _ @ - +"))) }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: Option<String>,
    pub name: Option<String>,
}

pub async fn add(store: &dyn Durable, passwords: &Passwords, new: NewUser<'_>, now: UnixTime) -> Result<User, AdminError> {
    check_username(new.username)?;
    check_password(new.password)?;
    let user = User {
        sub: random_token(16),
        username: new.username.to_string(),
        password_hash: passwords.hash(new.password).await?,
        email: new.email,
        name: new.name,
        disabled: false,
        created_at: now,
    };
    match store.insert_user(&user).await {
        Err(StoreError::Conflict(_)) => Err(AdminError::Invalid(format!("user {} already exists", new.username))),
        other => other.map(|_| user).map_err(AdminError::from),
    }
}

pub async fn set_password(store: &dyn Durable, passwords: &Passwords, username: &str, password: &str) -> Result<(), AdminError> {
    check_password(password)?;
    let hash = passwords.hash(password).await?;
    if store.set_password_hash(username, &hash).await? { Ok(()) } else { Err(AdminError::NotFound(format!("user {username}"))) }
}

/// Disables a user: no new sign-ins, and every live session of theirs ends at once (with the
/// grants issued in it). Returns the sessions it ended.
pub async fn disable(ender: &SessionEnder<'_>, username: &str) -> Result<Vec<EndedSession>, AdminError> {
    let user = ender.durable.user_by_username(username).await?.ok_or_else(|| AdminError::NotFound(format!("user {username}")))?;
    if !ender.durable.set_user_disabled(username, true).await? {
        return Err(AdminError::NotFound(format!("user {username}")));
    }
    Ok(ender.end_all_of(&user.sub, EndReason::UserDisabled).await?)
}
