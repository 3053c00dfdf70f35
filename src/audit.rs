//! The audit log: security-relevant events, in the durable store. Never key material.

use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;
use crate::clock::UnixTime;
use crate::store::{AuditEvent, Durable};

pub struct Event<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub caller: Option<String>,
    pub ok: bool,
    pub reason: Option<&'a str>,
    pub details: Value,
}

pub async fn record(state: &AppState, event: Event<'_>) -> Result<(), AppError> {
    append(state.durable.as_ref(), state.now(), event).await
}

/// `record` with only what it needs: the durable store and the time.
pub async fn append(durable: &dyn Durable, at: UnixTime, event: Event<'_>) -> Result<(), AppError> {
    durable
        .append_audit(&AuditEvent {
            id: 0,
            at,
            kind: event.kind.to_string(),
            subject: event.subject.to_string(),
            caller: event.caller,
            result: if event.ok { "ok" } else { "denied" }.to_string(),
            reason: event.reason.map(str::to_string),
            details: event.details,
        })
        .await?;
    Ok(())
}
