//! Device authorizations in the ephemeral store, so any node serves any step (RFC 8628 §3):
//!
//! - `device:{sha256(device_code)}`: the request (client, scopes, expiry), taken once when redeemed;
//! - `deviceuser:{sha256(user code)}`: the device code's hash, found from what the user typed,
//!   deleted once the user decided (a user code serves one decision);
//! - `devicedecision:{sha256(device_code)}`: the user's answer, written once (put-if-absent);
//! - `devicepoll:{sha256(device_code)}`: when the device last polled, and its current interval.
//!
//! Expiry is decided on the server's clock (`expires_at`); the store keeps the records a while
//! longer, so a late poll gets `expired_token` rather than `invalid_grant`.

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::user_code;
use crate::clock::UnixTime;
use crate::crypto::secrets::{generate_secret, hash_hex};
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::grant::Grant;

/// What RFC 8628 §3.5 adds to the interval at each `slow_down`.
pub const SLOW_DOWN_STEP: i64 = 5;
/// How many fresh user codes to try before giving up on a collision (each one in 2^34).
const USER_CODE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: UnixTime,
    /// The canonical user code (shown again on the consent page, to compare with the device).
    pub user_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Approved { grant: Grant },
    Denied,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Pace {
    last_poll: UnixTime,
    interval: i64,
}

/// What the device is told on the first answer.
pub struct Issued {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The answer to one poll (RFC 8628 §3.5).
#[derive(Debug)]
pub enum Polled {
    Pending,
    SlowDown,
    Expired,
    Denied,
    Approved(Grant),
    /// Unknown, already redeemed, or another client's: `invalid_grant` with this description.
    Invalid(&'static str),
}

fn request_key(code_hash: &str) -> String {
    format!("device:{code_hash}")
}
fn user_code_key(code: &str) -> String {
    format!("deviceuser:{}", hash_hex(code))
}
fn decision_key(code_hash: &str) -> String {
    format!("devicedecision:{code_hash}")
}
fn pace_key(code_hash: &str) -> String {
    format!("devicepoll:{code_hash}")
}

fn expires_in(state: &AppState) -> i64 {
    state.config.device.expires_in.as_secs() as i64
}

/// How long the records stay in the store: the code's life, and as long again for late polls.
fn retention(state: &AppState) -> Duration {
    state.config.device.expires_in * 2
}

fn to_bytes(value: &impl Serialize) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(value).map_err(|e| AppError::Internal(e.to_string()))
}

async fn read<T: DeserializeOwned>(state: &AppState, key: &str) -> Result<Option<T>, AppError> {
    Ok(state.ephemeral.get(key).await?.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Starts a device authorization for `client_id` and `scopes`.
pub async fn issue(state: &AppState, client_id: &str, scopes: Vec<String>, now: UnixTime) -> Result<Issued, AppError> {
    let device_code = generate_secret();
    let code_hash = hash_hex(&device_code);
    let life = state.config.device.expires_in;
    let mut claimed = None;
    for _ in 0..USER_CODE_ATTEMPTS {
        let code = user_code::generate();
        if state.ephemeral.put_if_absent(&user_code_key(&code), code_hash.as_bytes(), life).await? {
            claimed = Some(code);
            break;
        }
    }
    let user_code = claimed.ok_or_else(|| AppError::Internal("no free user code after several tries".into()))?;
    let request = DeviceAuthorization { client_id: client_id.to_string(), scopes, expires_at: now + expires_in(state), user_code: user_code.clone() };
    state.ephemeral.put(&request_key(&code_hash), &to_bytes(&request)?, retention(state)).await?;
    Ok(Issued { device_code, user_code: user_code::display(&user_code), expires_in: expires_in(state), interval: state.config.device.interval.as_secs() as i64 })
}

/// The live, undecided request whose user code the user typed (any spelling), with the hash of
/// its device code. An unknown, expired or already decided code are all `None`: the page says
/// the same for each.
pub async fn find_by_user_code(state: &AppState, typed: &str, now: UnixTime) -> Result<Option<(String, DeviceAuthorization)>, AppError> {
    let Some(code) = user_code::normalise(typed) else { return Ok(None) };
    let Some(code_hash) = state.ephemeral.get(&user_code_key(&code)).await? else { return Ok(None) };
    let code_hash = String::from_utf8_lossy(&code_hash).into_owned();
    let Some(request) = read::<DeviceAuthorization>(state, &request_key(&code_hash)).await? else { return Ok(None) };
    if now >= request.expires_at || state.ephemeral.get(&decision_key(&code_hash)).await?.is_some() {
        return Ok(None);
    }
    Ok(Some((code_hash, request)))
}

/// Records the user's decision, once: false when the request expired, is gone, or was decided
/// already (another browser was quicker).
pub async fn decide(state: &AppState, code_hash: &str, decision: &Decision, now: UnixTime) -> Result<bool, AppError> {
    let Some(request) = read::<DeviceAuthorization>(state, &request_key(code_hash)).await? else { return Ok(false) };
    if now >= request.expires_at {
        return Ok(false);
    }
    let recorded = state.ephemeral.put_if_absent(&decision_key(code_hash), &to_bytes(decision)?, retention(state)).await?;
    if recorded {
        state.ephemeral.delete(&user_code_key(&request.user_code)).await?;
    }
    Ok(recorded)
}

/// One poll of the token endpoint by `client_id` with `device_code`.
pub async fn poll(state: &AppState, device_code: &str, client_id: &str, now: UnixTime) -> Result<Polled, AppError> {
    let code_hash = hash_hex(device_code);
    let Some(request) = read::<DeviceAuthorization>(state, &request_key(&code_hash)).await? else {
        return Ok(Polled::Invalid("the device code is unknown or was already used"));
    };
    if request.client_id != client_id {
        return Ok(Polled::Invalid("the device code was issued to another client"));
    }
    if now >= request.expires_at {
        return Ok(Polled::Expired);
    }
    // Two racing polls may both pass; pacing is for well-behaved clients, not a security bound.
    let previous = read::<Pace>(state, &pace_key(&code_hash)).await?;
    let interval = previous.map_or(state.config.device.interval.as_secs() as i64, |p| p.interval);
    let too_soon = previous.is_some_and(|p| now - p.last_poll < p.interval);
    let interval = if too_soon { interval + SLOW_DOWN_STEP } else { interval };
    state.ephemeral.put(&pace_key(&code_hash), &to_bytes(&Pace { last_poll: now, interval })?, retention(state)).await?;
    if too_soon {
        return Ok(Polled::SlowDown);
    }
    match read::<Decision>(state, &decision_key(&code_hash)).await? {
        None => Ok(Polled::Pending),
        Some(Decision::Denied) => Ok(Polled::Denied),
        // Redeemed once: whoever takes the request gets the grant; a second poll finds nothing.
        Some(Decision::Approved { grant }) => match state.ephemeral.take(&request_key(&code_hash)).await? {
            Some(_) => Ok(Polled::Approved(grant)),
            None => Ok(Polled::Invalid("the device code is unknown or was already used")),
        },
    }
}
