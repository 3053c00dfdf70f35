//! The audit trail, append-only, read newest first.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{json_value, map_err, SqlStore};
use crate::clock::UnixTime;
use crate::store::{AuditEvent, AuditStore, StoreError, StoreResult};

/// Appends an event on `conn`: in a transaction, it commits with the change it records.
pub(super) async fn insert_audit(conn: &mut AnyConnection, e: &AuditEvent) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit_events (at, kind, subject, caller, result, reason, details) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(e.at)
        .bind(&e.kind)
        .bind(&e.subject)
        .bind(e.caller.clone())
        .bind(&e.result)
        .bind(e.reason.clone())
        .bind(e.details.to_string())
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, e: &AuditEvent) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_audit(&mut conn, e).await
    }

    async fn recent_audit(&self, subject: Option<&str>, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows = match subject {
            Some(s) => sqlx::query("SELECT id, at, kind, subject, caller, result, reason, details FROM audit_events WHERE subject = $1 ORDER BY id DESC LIMIT $2").bind(s).bind(limit),
            None => sqlx::query("SELECT id, at, kind, subject, caller, result, reason, details FROM audit_events ORDER BY id DESC LIMIT $1").bind(limit),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut events = rows.iter().map(event_from_row).collect::<StoreResult<Vec<_>>>()?;
        events.reverse();
        Ok(events)
    }

    async fn audit_page(&self, since: UnixTime, until: UnixTime, after: i64, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM audit_events WHERE id > $1 AND at >= $2 AND at < $3 ORDER BY id LIMIT $4"))
            .bind(after)
            .bind(since)
            .bind(until)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(event_from_row).collect()
    }
}

const COLUMNS: &str = "id, at, kind, subject, caller, result, reason, details";

fn event_from_row(r: &AnyRow) -> StoreResult<AuditEvent> {
    let get = |e: sqlx::Error| StoreError::Other(format!("audit_events row: {e}"));
    let details: String = r.try_get("details").map_err(get)?;
    Ok(AuditEvent {
        id: r.try_get("id").map_err(get)?,
        at: r.try_get("at").map_err(get)?,
        kind: r.try_get("kind").map_err(get)?,
        subject: r.try_get("subject").map_err(get)?,
        caller: r.try_get("caller").map_err(get)?,
        result: r.try_get("result").map_err(get)?,
        reason: r.try_get("reason").map_err(get)?,
        details: json_value(&details, "audit_events.details")?,
    })
}
