//! Who an upstream identity is here. The provider's subject is the durable link; the email links
//! a first sign-in to an existing user only when verified and only where configured; otherwise a
//! user is created (`jit`) or the sign-in refused (`existing`). Every sign-in refreshes the
//! user's groups and the roles the provider's `groups_to_roles` manages.

use std::collections::BTreeSet;

use serde_json::json;

use super::claims::UpstreamIdentity;
use super::error::UpstreamError;
use crate::clock::UnixTime;
use crate::config::{Provisioning, UpstreamConfig};
use crate::crypto::secrets::random_token;
use crate::store::{AuditEvent, Durable, StoreError, UpstreamLink, User};

/// What a user created by a provider has instead of a password hash: nothing verifies against it.
pub const NO_PASSWORD: &str = "!upstream";
/// Not an RFC 8176 method: the person signed in at another identity provider.
pub const AMR_FEDERATED: &str = "fed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Linked before.
    Returning,
    /// Linked now to an existing user, by verified email.
    Linked,
    /// Created now.
    Created,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Returning => "returning",
            Self::Linked => "linked",
            Self::Created => "created",
        }
    }
}

/// `allowed_email_domains`: empty lets anyone in; otherwise a verified email in one of them.
pub fn check_email_domain(provider: &UpstreamConfig, identity: &UpstreamIdentity) -> Result<(), UpstreamError> {
    if provider.allowed_email_domains.is_empty() {
        return Ok(());
    }
    if !identity.email_verified {
        return Err(UpstreamError::refused("email_not_verified", format!("{} did not confirm your email address, which this sign-in needs.", provider.display_name)));
    }
    let domain = identity.email_domain().unwrap_or_default();
    if provider.allowed_email_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        Ok(())
    } else {
        Err(UpstreamError::refused("email_domain_not_allowed", "Accounts from your email domain may not sign in here."))
    }
}

/// The session's `amr`, and whether it counts as having proven a second factor: only when the
/// provider is trusted for it and says the person proved one.
pub fn session_methods(provider: &UpstreamConfig, identity: &UpstreamIdentity) -> (Vec<String>, bool) {
    let proven = provider.trust_upstream_mfa
        && (identity.amr.iter().any(|m| m == crate::oauth::acr::AMR_MFA) || identity.acr.as_ref().is_some_and(|acr| provider.mfa_acr_values.contains(acr)));
    let mut amr = vec![AMR_FEDERATED.to_string()];
    if proven {
        amr.extend(identity.amr.iter().filter(|m| m.len() <= 16 && m.as_str() != AMR_FEDERATED).cloned());
    }
    (amr, proven)
}

/// For each role `groups_to_roles` manages, whether the person's groups grant it.
pub fn managed_roles(provider: &UpstreamConfig, groups: &[String]) -> Vec<(String, bool)> {
    let roles: BTreeSet<&String> = provider.groups_to_roles.values().collect();
    roles.into_iter().map(|role| (role.clone(), provider.groups_to_roles.iter().any(|(group, r)| r == role && groups.contains(group)))).collect()
}

/// The username of a user created at first sign-in: the mapped claim, else the email, else one
/// made of the provider and the subject, whichever sesame accepts as a username first.
pub fn new_username(provider: &UpstreamConfig, identity: &UpstreamIdentity) -> String {
    let valid = |u: &&String| crate::admin::users::check_username(u).is_ok();
    identity.username.iter().chain(identity.email.iter()).find(valid).cloned().unwrap_or_else(|| {
        let subject: String = identity.subject.chars().filter(|c| c.is_alphanumeric() || "._-".contains(*c)).take(64).collect();
        format!("{}-{subject}", provider.id)
    })
}

/// The local user this identity signs in as, and how it was found.
pub async fn resolve(store: &dyn Durable, provider: &UpstreamConfig, identity: &UpstreamIdentity, now: UnixTime) -> Result<(User, UpstreamLink, Outcome), UpstreamError> {
    check_email_domain(provider, identity)?;
    let disabled = || UpstreamError::refused("user_disabled", "This account is disabled.");
    if let Some(link) = store.upstream_link(&provider.id, &identity.subject).await? {
        let user = store.user(&link.sub).await?.ok_or_else(|| UpstreamError::refused("no_account", "Your account here no longer exists."))?;
        if user.disabled {
            return Err(disabled());
        }
        return Ok((user, link, Outcome::Returning));
    }
    let link_for = |sub: &str| UpstreamLink { provider_id: provider.id.clone(), upstream_subject: identity.subject.clone(), sub: sub.to_string(), created_at: now, last_sign_in_at: now };
    let audit = |kind: &str, user: &User| AuditEvent {
        id: 0,
        at: now,
        kind: kind.to_string(),
        subject: user.sub.clone(),
        caller: Some(format!("upstream:{}", provider.id)),
        result: "ok".into(),
        reason: None,
        details: json!({"provider": provider.id, "upstream_subject": identity.subject, "username": user.username}),
    };
    if provider.link_by_verified_email && identity.email_verified {
        let email = identity.email.as_deref().unwrap_or_default();
        let mut candidates = store.users_by_email(email).await?;
        if candidates.len() > 1 {
            return Err(UpstreamError::refused("email_ambiguous", "More than one account here has your email address. Ask an administrator to sort it out."));
        }
        if let Some(user) = candidates.pop() {
            if user.disabled {
                return Err(disabled());
            }
            let link = link_for(&user.sub);
            return match store.insert_upstream_link(&link, None, &audit("upstream.link", &user)).await {
                Ok(()) => Ok((user, link, Outcome::Linked)),
                Err(StoreError::Conflict(_)) => Err(UpstreamError::refused(
                    "already_linked",
                    format!("Your account here is linked to another {} identity already.", provider.display_name),
                )),
                Err(e) => Err(e.into()),
            };
        }
    }
    if provider.provisioning == Provisioning::Existing {
        return Err(UpstreamError::refused("no_account", "You have no account here. Ask an administrator to create one."));
    }
    let username = new_username(provider, identity);
    let taken = || UpstreamError::refused("username_taken", format!("An account named {username} exists here already, so none can be made for your {} identity. Ask an administrator.", provider.display_name));
    if store.user_by_username(&username).await?.is_some() {
        return Err(taken());
    }
    let user = User {
        sub: random_token(16),
        username: username.clone(),
        password_hash: NO_PASSWORD.to_string(),
        // sesame vouches for the addresses it holds (`email_verified: true`): only verified ones.
        email: identity.email.clone().filter(|_| identity.email_verified),
        name: identity.name.clone(),
        disabled: false,
        created_at: now,
    };
    let link = link_for(&user.sub);
    match store.insert_upstream_link(&link, Some(&user), &audit("upstream.user.create", &user)).await {
        Ok(()) => Ok((user, link, Outcome::Created)),
        Err(StoreError::Conflict(_)) => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

/// Stores the groups of this sign-in and brings the managed roles in line with them (audited).
pub async fn refresh_groups_and_roles(store: &dyn Durable, provider: &UpstreamConfig, link: &UpstreamLink, groups: &[String], now: UnixTime) -> Result<(), UpstreamError> {
    store.record_upstream_sign_in(link, groups, now).await?;
    let managed = managed_roles(provider, groups);
    if managed.is_empty() {
        return Ok(());
    }
    let held = store.user_roles(&link.sub).await?;
    for (role, wanted) in managed {
        let has = held.contains(&role);
        let changed = match (wanted, has) {
            (true, false) => store.grant_role(&link.sub, &role, now).await?,
            (false, true) => store.remove_role(&link.sub, &role).await?,
            _ => false,
        };
        if changed {
            let kind = if wanted { "user.role.grant" } else { "user.role.remove" };
            let event = crate::audit::Event { kind, subject: &link.sub, caller: Some(format!("upstream:{}", provider.id)), ok: true, reason: None, details: json!({"role": role, "groups": groups}) };
            crate::audit::append(store, now, event).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> UpstreamConfig {
        figment::Figment::from(<figment::providers::Toml as figment::providers::Format>::string("id = \"corp\"\ndisplay_name = \"Corp\"\nissuer = \"https://login.corp.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n")).extract().unwrap()
    }

    fn identity(email: Option<&str>, verified: bool) -> UpstreamIdentity {
        UpstreamIdentity {
            subject: "S-1/x".into(),
            username: None,
            email: email.map(str::to_string),
            email_verified: verified,
            name: None,
            groups: vec![],
            amr: vec![],
            acr: None,
        }
    }

    #[test]
    fn allowed_domains_need_a_verified_address_in_one_of_them() {
        let mut p = provider();
        assert!(check_email_domain(&p, &identity(None, false)).is_ok(), "no list: anyone");
        p.allowed_email_domains = vec!["Corp.Example".into()];
        assert!(check_email_domain(&p, &identity(Some("a@corp.example"), true)).is_ok());
        assert_eq!(check_email_domain(&p, &identity(Some("a@corp.example"), false)).unwrap_err().reason(), "email_not_verified");
        assert_eq!(check_email_domain(&p, &identity(Some("a@evil.example"), true)).unwrap_err().reason(), "email_domain_not_allowed");
        assert_eq!(check_email_domain(&p, &identity(Some("a@sub.corp.example"), true)).unwrap_err().reason(), "email_domain_not_allowed");
        assert_eq!(check_email_domain(&p, &identity(None, false)).unwrap_err().reason(), "email_not_verified");
    }

    #[test]
    fn upstream_mfa_counts_only_when_trusted_and_claimed() {
        let mut p = provider();
        let mut id = identity(None, false);
        id.amr = vec!["pwd".into(), "otp".into(), "mfa".into()];
        assert_eq!(session_methods(&p, &id), (vec!["fed".to_string()], false), "not trusted: a federated sign-in, no factor");
        p.trust_upstream_mfa = true;
        assert_eq!(session_methods(&p, &id), (vec!["fed".into(), "pwd".into(), "otp".into(), "mfa".into()], true));
        id.amr = vec!["pwd".into()];
        assert!(!session_methods(&p, &id).1, "trusted, but only a password upstream");
        id.acr = Some("http://schemas.openid.net/pape/policies/2007/06/multi-factor".into());
        p.mfa_acr_values = vec![id.acr.clone().unwrap()];
        assert!(session_methods(&p, &id).1, "an acr the provider config names as MFA");
    }

    #[test]
    fn managed_roles_follow_the_groups() {
        let mut p = provider();
        assert!(managed_roles(&p, &["x".into()]).is_empty());
        p.groups_to_roles.insert("sesame-admins".into(), "admin".into());
        p.groups_to_roles.insert("root-ops".into(), "admin".into());
        assert_eq!(managed_roles(&p, &["eng".into()]), [("admin".to_string(), false)]);
        assert_eq!(managed_roles(&p, &["root-ops".into()]), [("admin".to_string(), true)]);
    }

    #[test]
    fn new_usernames_fall_back_to_the_email_then_the_subject() {
        let p = provider();
        let mut id = identity(Some("ada@corp.example"), true);
        id.username = Some("ada".into());
        assert_eq!(new_username(&p, &id), "ada");
        id.username = Some("has space".into());
        assert_eq!(new_username(&p, &id), "ada@corp.example");
        id.email = None;
        assert_eq!(new_username(&p, &id), "corp-S-1x");
    }
}
