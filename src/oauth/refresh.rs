//! Refresh-token families. (Interface only on this branch: the implementation lands with the
//! machine-clients work, which replaces this file.)

use crate::clock::UnixTime;
use crate::error::AppError;
use crate::state::AppState;

pub struct NewRefreshGrant {
    pub client_id: String,
    pub sub: String,
    pub scopes: Vec<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
}

pub struct IssuedRefresh {
    pub token: String,
    pub family_id: String,
}

pub async fn issue_new_family(_state: &AppState, _grant: NewRefreshGrant, _now: UnixTime) -> Result<IssuedRefresh, AppError> {
    Err(AppError::Internal("refresh tokens are not available on this branch".into()))
}

pub async fn revoke_family(_state: &AppState, _family_id: &str) -> Result<(), AppError> {
    Ok(())
}

pub async fn record_access_token(_state: &AppState, _family_id: &str, _jti: &str, _exp: UnixTime) -> Result<(), AppError> {
    Ok(())
}
