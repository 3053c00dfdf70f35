//! SSO sessions as administrators see them, for the CLI and the admin API: the live ones (with
//! their user's name and the clients that got tokens in them), and ending one or all of a user's.

use std::collections::HashMap;

use serde::Serialize;

use super::AdminError;
use crate::clock::UnixTime;
use crate::session::{EndReason, EndedSession, SessionEnder};
use crate::store::SsoSessionWithClients;

/// One live session, as listed.
#[derive(Debug, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub sub: String,
    pub username: Option<String>,
    pub created_at: UnixTime,
    /// The last time its user proved who they are in it (the password, or a later second factor).
    pub last_auth_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The clients that received tokens in it, first one first.
    pub clients: Vec<String>,
}

fn summary(live: SsoSessionWithClients, username: Option<String>) -> SessionSummary {
    let s = live.session;
    SessionSummary {
        last_auth_at: s.factor_proven_at.map_or(s.auth_time, |f| f.max(s.auth_time)),
        id: s.sid,
        sub: s.sub,
        username,
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
        amr: s.amr,
        ip: s.ip,
        user_agent: s.user_agent,
        clients: live.clients,
    }
}

/// The sub of `username`, or NotFound.
async fn sub_of(ender: &SessionEnder<'_>, username: &str) -> Result<String, AdminError> {
    Ok(ender.durable.user_by_username(username).await?.ok_or_else(|| AdminError::NotFound(format!("user {username}")))?.sub)
}

/// The live sessions of `username` (of everyone without one), newest first.
pub async fn list(ender: &SessionEnder<'_>, username: Option<&str>) -> Result<Vec<SessionSummary>, AdminError> {
    let sub = match username {
        Some(name) => Some(sub_of(ender, name).await?),
        None => None,
    };
    let live = ender.durable.live_sso_sessions(sub.as_deref(), ender.now).await?;
    let mut usernames: HashMap<String, Option<String>> = HashMap::new();
    let mut listed = Vec::with_capacity(live.len());
    for one in live {
        let sub = one.session.sub.clone();
        if !usernames.contains_key(&sub) {
            let name = ender.durable.user(&sub).await?.map(|u| u.username);
            usernames.insert(sub.clone(), name);
        }
        listed.push(summary(one, usernames[&sub].clone()));
    }
    Ok(listed)
}

/// Ends session `id`; NotFound when there is no such session or it has ended already.
pub async fn end(ender: &SessionEnder<'_>, id: &str) -> Result<EndedSession, AdminError> {
    ender.end(id, EndReason::Admin).await?.ok_or_else(|| AdminError::NotFound(format!("live session {id}")))
}

/// Ends every live session of `username`; returns those it ended (none is not an error).
pub async fn end_all_of_user(ender: &SessionEnder<'_>, username: &str) -> Result<Vec<EndedSession>, AdminError> {
    let sub = sub_of(ender, username).await?;
    Ok(ender.end_all_of(&sub, EndReason::Admin).await?)
}
