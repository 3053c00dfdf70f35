//! Ending SSO sessions: the one way every path ends one (RP-initiated logout, the account page,
//! a new sign-in in the same browser, the admin CLI and API, disabling a user).
//!
//! Ending a session marks its registry row ended and revokes the refresh-token families issued
//! in it, with its audit event, in one transaction; then denies those families' live access
//! tokens, deletes the live session from the ephemeral store this process reaches, and hands
//! the clients that received tokens in it to [`SessionEnder::notify_clients`]. A node whose
//! ephemeral store the ender cannot reach (the CLI beside a server on the in-process store)
//! learns it from the registry at the session's next `load`.

use serde::Serialize;
use serde_json::json;

use super::key_of_hash;
use crate::clock::UnixTime;
use crate::state::AppState;
use crate::store::{AuditEvent, Durable, Ephemeral, StoreResult};
use crate::tokens::deny_list::DenyList;

/// Why a session ended, as the registry and the audit log record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// RP-initiated logout (`/logout`).
    Logout,
    /// The user signed out of this session on the account page.
    SignOut,
    /// The user ended it from another of their sessions (the account page).
    EndedByUser,
    /// An administrator ended it (CLI or admin API).
    Admin,
    /// Its user was disabled.
    UserDisabled,
    /// The same user signed in again in the same browser, which got a fresh session: the
    /// applications of the old one keep their grants.
    Reauthenticated,
    /// Someone else signed in in the same browser.
    OtherUserSignedIn,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::SignOut => "sign_out",
            Self::EndedByUser => "ended_by_user",
            Self::Admin => "admin",
            Self::UserDisabled => "user_disabled",
            Self::Reauthenticated => "reauthenticated",
            Self::OtherUserSignedIn => "other_user_signed_in",
        }
    }

    /// Whether the grants issued in the session end with it (its refresh-token families are
    /// revoked and its clients told). A re-authentication only moves the person to a fresh
    /// session; logging them out of their applications would be a surprise.
    pub fn ends_grants(self) -> bool {
        !matches!(self, Self::Reauthenticated)
    }
}

/// What ending a session did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndedSession {
    pub sid: String,
    pub sub: String,
    pub reason: EndReason,
    /// Every client that received tokens in the session, first one first.
    pub clients: Vec<String>,
    /// How many refresh-token families this end revoked.
    pub revoked_families: usize,
    /// How many back-channel logouts it queued (`crate::logout`).
    pub logouts_queued: u64,
}

/// Ends sessions, with what that needs and no more: the stores, who acts (the audit caller)
/// and the time.
pub struct SessionEnder<'a> {
    pub durable: &'a dyn Durable,
    pub ephemeral: &'a dyn Ephemeral,
    /// The audit log's caller: `cli`, `account`, `logout`, `login`, or an admin API caller.
    pub actor: &'a str,
    pub now: UnixTime,
    /// Wakes this node's back-channel logout worker; without one (the CLI), a server's worker
    /// finds the queued deliveries within a second.
    pub logout_wakeup: Option<&'a tokio::sync::Notify>,
}

impl<'a> SessionEnder<'a> {
    pub fn of(state: &'a AppState, actor: &'a str) -> Self {
        Self { durable: state.durable.as_ref(), ephemeral: state.ephemeral.as_ref(), actor, now: state.now(), logout_wakeup: Some(&state.logout_wakeup) }
    }

    /// Ends session `sid` for `reason`. None when it is unknown or was ended already (by a
    /// concurrent call, say): nothing is done twice.
    pub async fn end(&self, sid: &str, reason: EndReason) -> StoreResult<Option<EndedSession>> {
        let Some(row) = self.durable.sso_session(sid).await? else { return Ok(None) };
        if row.ended_at.is_some() {
            return Ok(None);
        }
        let audit = self.audit_event(&row.sub, sid, reason);
        let Some(ended) = self.durable.end_sso_session(sid, reason.as_str(), reason.ends_grants(), self.now, &audit).await? else { return Ok(None) };
        self.ephemeral.delete(&key_of_hash(&ended.session.key_hash)).await?;
        let deny_list = DenyList { durable: self.durable, ephemeral: self.ephemeral };
        for (jti, exp) in &ended.access_tokens {
            deny_list.deny_token(jti, *exp, self.now).await?;
        }
        let ended = EndedSession {
            sid: ended.session.sid,
            sub: ended.session.sub,
            reason,
            clients: ended.clients,
            revoked_families: ended.revoked_families.len(),
            logouts_queued: ended.logouts_queued,
        };
        self.notify_clients(&ended);
        Ok(Some(ended))
    }

    /// Ends every live session of user `sub`; returns those it ended.
    pub async fn end_all_of(&self, sub: &str, reason: EndReason) -> StoreResult<Vec<EndedSession>> {
        let mut ended = Vec::new();
        for live in self.durable.live_sso_sessions(Some(sub), self.now).await? {
            if let Some(one) = self.end(&live.session.sid, reason).await? {
                ended.push(one);
            }
        }
        Ok(ended)
    }

    /// The clients' back-channel logouts were queued with the end (one transaction); this wakes
    /// the worker that sends them (`crate::logout::delivery`).
    fn notify_clients(&self, ended: &EndedSession) {
        tracing::info!(sid = %ended.sid, reason = ended.reason.as_str(), clients = ended.clients.len(), revoked_families = ended.revoked_families, logouts_queued = ended.logouts_queued, actor = self.actor, "SSO session ended");
        if ended.logouts_queued > 0 {
            if let Some(wakeup) = self.logout_wakeup {
                wakeup.notify_one();
            }
        }
    }

    fn audit_event(&self, sub: &str, sid: &str, reason: EndReason) -> AuditEvent {
        AuditEvent {
            id: 0,
            at: self.now,
            kind: "session.end".into(),
            subject: sub.to_string(),
            caller: Some(self.actor.to_string()),
            result: "ok".into(),
            reason: Some(reason.as_str().into()),
            details: json!({ "sid": sid }),
        }
    }
}
