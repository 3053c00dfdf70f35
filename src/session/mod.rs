//! The SSO session: a record in the ephemeral store (shared by every node) and a cookie
//! holding only a random secret. The store key is the secret's hash.
//!
//! Each session also has a row in the durable registry (`SsoSessionStore`), written when it
//! starts: who, since when, how, from where, and the clients that got a code in it. The row is
//! the authority on whether the session was ended: `load` reads it (or, once a minute, touches
//! it) and refuses a session whose row is ended or missing, so a session ended by another node
//! or by the CLI (which may not reach this node's ephemeral store) is over at once, and one the
//! ephemeral store lost or forgot to forget does not come back. Every way of ending a session
//! goes through [`end::SessionEnder`].

pub mod end;

use std::net::IpAddr;
use std::time::Duration;

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_hex, random_token};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::SsoSession;

pub use end::{EndReason, EndedSession, SessionEnder};

/// Idle expiry is pushed forward at most this often, to spare the stores a write per request.
const TOUCH_EVERY: i64 = 60;
/// Registry rows ended or expired longer ago than this are pruned.
const REGISTRY_RETENTION: i64 = 24 * 3600;
/// At most this many are pruned at each sign-in: every sign-in adds one row that will need
/// pruning one day, so this keeps up while bounding the work of each.
const PRUNE_PER_SIGN_IN: i64 = 100;
/// The longest user agent kept in the registry.
const MAX_USER_AGENT_CHARS: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Public session id: the `sid` claim; not the cookie secret.
    pub sid: String,
    pub sub: String,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    pub last_seen: UnixTime,
    pub amr: Vec<String>,
    /// Guards forms posted within this session (logout confirmation).
    pub csrf: String,
    /// When the session last proved a second factor (`amr` then holds `mfa`).
    #[serde(default)]
    pub factor_proven_at: Option<UnixTime>,
}

pub struct LoadedSession {
    pub secret: String,
    pub session: Session,
}

/// Where a session was started from, as the registry shows it to its user and to admins.
#[derive(Debug, Clone, Default)]
pub struct SessionOrigin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

fn store_key(secret: &str) -> String {
    key_of_hash(&hash_hex(secret))
}

/// The ephemeral key of the session whose cookie secret hashes to `key_hash`.
fn key_of_hash(key_hash: &str) -> String {
    format!("sess:{key_hash}")
}

/// The session secret the browser sent in its cookie, if any: taken from the request by axum,
/// so the session code below never sees headers.
#[derive(Debug, Clone, Default)]
pub struct SessionCookie(pub Option<String>);

impl FromRequestParts<AppState> for SessionCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(cookie_value(&parts.headers, &state.config.cookie_name(&state.config.session.cookie_name)).map(str::to_string)))
    }
}

/// The value of cookie `name` (RFC 6265 §4.2.1 pairs, the first of that name), when it is a
/// plausible session secret: non-empty and at most 64 bytes.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

fn ttl(state: &AppState, session: &Session, now: UnixTime) -> Option<Duration> {
    let absolute_end = session.created_at + state.config.session.absolute_timeout.as_secs() as i64;
    let idle_end = now + state.config.session.idle_timeout.as_secs() as i64;
    let end = absolute_end.min(idle_end);
    (end > now).then(|| Duration::from_secs((end - now) as u64))
}

fn to_bytes(session: &Session) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(session).map_err(|e| AppError::Internal(e.to_string()))
}

/// The live session named by the request's cookie, if any; extends its idle expiry.
pub async fn load(state: &AppState, cookie: &SessionCookie, now: UnixTime) -> Result<Option<LoadedSession>, AppError> {
    let Some(secret) = cookie.0.clone() else { return Ok(None) };
    let key = store_key(&secret);
    let Some(bytes) = state.ephemeral.get(&key).await? else { return Ok(None) };
    let Ok(mut session) = serde_json::from_slice::<Session>(&bytes) else { return Ok(None) };
    let Some(ttl) = ttl(state, &session, now) else {
        state.ephemeral.delete(&key).await?;
        return Ok(None);
    };
    let touch = now - session.last_seen >= TOUCH_EVERY;
    // One registry call either way: the touch is a conditional update that also says whether
    // the session is still live.
    let live = if touch {
        state.durable.touch_sso_session(&session.sid, now, now + ttl.as_secs() as i64).await?
    } else {
        is_on(state, &session.sid).await?
    };
    if !live {
        state.ephemeral.delete(&key).await?;
        return Ok(None);
    }
    if touch {
        session.last_seen = now;
        state.ephemeral.put(&key, &to_bytes(&session)?, ttl).await?;
    }
    Ok(Some(LoadedSession { secret, session }))
}

/// The session a cookie secret names, as stored, without extending it.
async fn peek(state: &AppState, secret: &str) -> Result<Option<Session>, AppError> {
    let bytes = state.ephemeral.get(&store_key(secret)).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Starts a session with a fresh secret (never one the browser brought along): its registry
/// row first, so no live session is ever missing from the registry.
pub async fn create(state: &AppState, sub: &str, amr: &[&str], origin: &SessionOrigin, now: UnixTime) -> Result<LoadedSession, AppError> {
    let session = Session {
        sid: random_token(16),
        sub: sub.to_string(),
        auth_time: now,
        created_at: now,
        last_seen: now,
        amr: amr.iter().map(|s| s.to_string()).collect(),
        csrf: random_token(24),
        factor_proven_at: None,
    };
    let secret = generate_secret();
    let ttl = ttl(state, &session, now).unwrap_or(Duration::from_secs(1));
    let key_hash = hash_hex(&secret);
    state.durable.insert_sso_session(&registry_row(state, &session, &key_hash, origin, now + ttl.as_secs() as i64)).await?;
    state.ephemeral.put(&key_of_hash(&key_hash), &to_bytes(&session)?, ttl).await?;
    match state.durable.prune_sso_sessions(now - REGISTRY_RETENTION, PRUNE_PER_SIGN_IN).await {
        Ok(0) => {}
        Ok(pruned) => tracing::debug!(pruned, "pruned ended and expired SSO sessions from the registry"),
        Err(e) => tracing::warn!(error = %e, "pruning the SSO session registry failed; the next sign-in tries again"),
    }
    Ok(LoadedSession { secret, session })
}

fn registry_row(state: &AppState, session: &Session, key_hash: &str, origin: &SessionOrigin, expires_at: UnixTime) -> SsoSession {
    SsoSession {
        sid: session.sid.clone(),
        sub: session.sub.clone(),
        key_hash: key_hash.to_string(),
        created_at: session.created_at,
        auth_time: session.auth_time,
        factor_proven_at: session.factor_proven_at,
        amr: session.amr.clone(),
        last_seen_at: session.last_seen,
        expires_at,
        absolute_expires_at: session.created_at + state.config.session.absolute_timeout.as_secs() as i64,
        ip: origin.ip.map(|ip| ip.to_string()),
        user_agent: origin.user_agent.as_deref().map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        ended_at: None,
        end_reason: None,
    }
}

/// Records that the session proved a second factor by `methods` (RFC 8176 `amr` values) at
/// `now`: `amr` gains them and `mfa`.
pub async fn prove_second_factor(state: &AppState, loaded: &mut LoadedSession, methods: &[&str], now: UnixTime) -> Result<(), AppError> {
    let session = &mut loaded.session;
    for m in methods.iter().copied().chain([crate::oauth::acr::AMR_MFA]) {
        if !session.amr.iter().any(|a| a == m) {
            session.amr.push(m.to_string());
        }
    }
    session.factor_proven_at = Some(now);
    session.last_seen = now;
    let ttl = ttl(state, session, now).unwrap_or(Duration::from_secs(1));
    // A session ended meanwhile stays ended: its live record is not written back.
    if state.durable.record_sso_session_factor(&session.sid, &session.amr, now, now + ttl.as_secs() as i64).await? {
        state.ephemeral.put(&store_key(&loaded.secret), &to_bytes(session)?, ttl).await?;
    }
    Ok(())
}

/// Records that `client_id` receives a code in the session (back-channel logout will tell it
/// when the session ends).
pub async fn record_client(state: &AppState, session: &Session, client_id: &str, now: UnixTime) -> Result<(), AppError> {
    state.durable.record_sso_session_client(&session.sid, client_id, now).await?;
    Ok(())
}

/// Whether session `sid` is still on: not ended (nor pruned). A code issued in a session that
/// ended before the code was redeemed yields nothing.
pub async fn is_on(state: &AppState, sid: &str) -> Result<bool, AppError> {
    Ok(state.durable.sso_session(sid).await?.is_some_and(|row| row.ended_at.is_none()))
}

/// Ends the request's own session for `reason` (and deletes its live record by the cookie's
/// secret too, should the registry not know it).
pub async fn end_current(state: &AppState, loaded: &LoadedSession, reason: EndReason, actor: &str) -> Result<Option<EndedSession>, AppError> {
    let ended = SessionEnder::of(state, actor).end(&loaded.session.sid, reason).await?;
    state.ephemeral.delete(&store_key(&loaded.secret)).await?;
    Ok(ended)
}

/// Before a sign-in starts a fresh session in this browser, ends whatever session its cookie
/// names: as a re-authentication when `new_sub` signs in again (the grants issued in it stay),
/// fully when someone else signs in.
pub async fn replace_presented(state: &AppState, cookie: &SessionCookie, new_sub: &str) -> Result<(), AppError> {
    let Some(secret) = &cookie.0 else { return Ok(()) };
    if let Some(old) = peek(state, secret).await? {
        let reason = if old.sub == new_sub { EndReason::Reauthenticated } else { EndReason::OtherUserSignedIn };
        SessionEnder::of(state, "login").end(&old.sid, reason).await?;
    }
    state.ephemeral.delete(&store_key(secret)).await?;
    Ok(())
}

/// A `HttpOnly; SameSite=Lax; Path=/` cookie (`Secure` and `__Host-` on https); without
/// `max_age`, it lasts as long as the browser session.
pub fn cookie_header(state: &AppState, base_name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if state.config.issuer_is_https() { "; Secure" } else { "" };
    let max_age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let text = format!("{}={value}; Path=/; HttpOnly; SameSite=Lax{max_age}{secure}", state.config.cookie_name(base_name));
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    cookie_header(state, &state.config.session.cookie_name, value, Some(max_age))
}

pub fn set_cookie(state: &AppState, secret: &str) -> HeaderValue {
    cookie(state, secret, state.config.session.absolute_timeout.as_secs() as i64)
}

pub fn clear_cookie(state: &AppState) -> HeaderValue {
    cookie(state, "", 0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn headers(lines: &[String]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(header::COOKIE, line.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_first_cookie_of_the_name_wins_and_odd_ones_are_ignored() {
        let h = headers(&["a=1; sesame_session=abc; sesame_session=def".into(), "sesame_session=ghi".into()]);
        assert_eq!(cookie_value(&h, "sesame_session"), Some("abc"));
        assert_eq!(cookie_value(&headers(&["sesame_session=".into()]), "sesame_session"), None);
        assert_eq!(cookie_value(&headers(&[format!("sesame_session={}", "x".repeat(65))]), "sesame_session"), None);
        assert_eq!(cookie_value(&headers(&["xsesame_session=abc".into()]), "sesame_session"), None);
    }

    proptest! {
        #[test]
        fn a_session_cookie_is_found_among_others(value in "[A-Za-z0-9_-]{1,64}", before in prop::collection::vec(("[a-z]{1,8}", "[A-Za-z0-9]{0,10}"), 0..4)) {
            let mut pairs: Vec<String> = before.iter().filter(|(k, _)| k != "sesame_session").map(|(k, v)| format!("{k}={v}")).collect();
            pairs.push(format!("sesame_session={value}"));
            let h = headers(&[pairs.join("; ")]);
            prop_assert_eq!(cookie_value(&h, "sesame_session"), Some(value.as_str()));
        }
    }
}
