//! The SSO session: a record in the ephemeral store (shared by every node) and a cookie
//! holding only a random secret. The store key is the secret's hash.

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

/// Idle expiry is pushed forward at most this often, to spare the store a write per request.
const TOUCH_EVERY: i64 = 60;

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

fn store_key(secret: &str) -> String {
    format!("sess:{}", hash_hex(secret))
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
    if now - session.last_seen >= TOUCH_EVERY {
        session.last_seen = now;
        state.ephemeral.put(&key, &serde_json::to_vec(&session).map_err(|e| AppError::Internal(e.to_string()))?, ttl).await?;
    }
    Ok(Some(LoadedSession { secret, session }))
}

/// Starts a session with a fresh secret (never one the browser brought along).
pub async fn create(state: &AppState, sub: &str, amr: &[&str], now: UnixTime) -> Result<LoadedSession, AppError> {
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
    state.ephemeral.put(&store_key(&secret), &serde_json::to_vec(&session).map_err(|e| AppError::Internal(e.to_string()))?, ttl).await?;
    Ok(LoadedSession { secret, session })
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
    let bytes = serde_json::to_vec(session).map_err(|e| AppError::Internal(e.to_string()))?;
    state.ephemeral.put(&store_key(&loaded.secret), &bytes, ttl).await?;
    Ok(())
}

pub async fn end(state: &AppState, secret: &str) -> Result<(), AppError> {
    state.ephemeral.delete(&store_key(secret)).await?;
    Ok(())
}

/// Ends whatever session the request's cookie names.
pub async fn end_presented(state: &AppState, cookie: &SessionCookie) -> Result<(), AppError> {
    if let Some(secret) = &cookie.0 {
        end(state, secret).await?;
    }
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
