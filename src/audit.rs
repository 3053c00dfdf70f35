//! The audit log: security-relevant events, in the durable store. Never key material.

use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;
use crate::store::AuditEvent;

pub struct Event<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub caller: Option<String>,
    pub ok: bool,
    pub reason: Option<&'a str>,
    pub details: Value,
}

pub async fn record(state: &AppState, event: Event<'_>) -> Result<(), AppError> {
    state
        .durable
        .append_audit(&AuditEvent {
            id: 0,
            at: state.now(),
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
