//! The back-channel logout outbox. A claim is a conditional update per row: of nodes racing for
//! a due delivery, exactly one changes it, so each attempt is made once.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{map_err, SqlStore};
use crate::clock::UnixTime;
use crate::store::{LogoutDelivery, LogoutOutboxStore, LogoutOutcome, StoreError, StoreResult};

const COLUMNS: &str = "id, client_id, sub, sid, created_at, attempts, next_attempt_at";
/// Unsettled and not held by a live lease.
const DUE: &str = "delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= $1 AND lease_until <= $1";

fn delivery_from_row(row: &AnyRow) -> StoreResult<LogoutDelivery> {
    let get = |e: sqlx::Error| StoreError::Other(format!("logout_deliveries row: {e}"));
    Ok(LogoutDelivery {
        id: row.try_get("id").map_err(get)?,
        client_id: row.try_get("client_id").map_err(get)?,
        sub: row.try_get("sub").map_err(get)?,
        sid: row.try_get("sid").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        attempts: row.try_get("attempts").map_err(get)?,
        next_attempt_at: row.try_get("next_attempt_at").map_err(get)?,
    })
}

#[async_trait]
impl LogoutOutboxStore for SqlStore {
    async fn enqueue_logouts(&self, deliveries: &[LogoutDelivery]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for d in deliveries {
            sqlx::query(&format!("INSERT INTO logout_deliveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .bind(&d.id)
                .bind(&d.client_id)
                .bind(&d.sub)
                .bind(&d.sid)
                .bind(d.created_at)
                .bind(d.attempts)
                .bind(d.next_attempt_at)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn claim_logouts(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> StoreResult<Vec<LogoutDelivery>> {
        let candidates = sqlx::query(&format!("SELECT {COLUMNS} FROM logout_deliveries WHERE {DUE} ORDER BY next_attempt_at LIMIT $2"))
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let mut won = Vec::new();
        for row in &candidates {
            let mut d = delivery_from_row(row)?;
            let claimed = sqlx::query(&format!("UPDATE logout_deliveries SET lease_until = $2, attempts = attempts + 1 WHERE id = $3 AND {DUE}"))
                .bind(now)
                .bind(lease_until)
                .bind(&d.id)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
            if claimed.rows_affected() == 1 {
                d.attempts += 1;
                won.push(d);
            }
        }
        Ok(won)
    }

    async fn settle_logout(&self, id: &str, outcome: &LogoutOutcome) -> StoreResult<()> {
        let query = match outcome {
            LogoutOutcome::Delivered { at } => sqlx::query("UPDATE logout_deliveries SET delivered_at = $1, lease_until = 0, last_error = NULL WHERE id = $2").bind(*at).bind(id),
            LogoutOutcome::Retry { next_attempt_at, error } => sqlx::query("UPDATE logout_deliveries SET next_attempt_at = $1, last_error = $2, lease_until = 0 WHERE id = $3")
                .bind(*next_attempt_at)
                .bind(error.clone())
                .bind(id),
            LogoutOutcome::GaveUp { at, error } => sqlx::query("UPDATE logout_deliveries SET given_up_at = $1, last_error = $2, lease_until = 0 WHERE id = $3").bind(*at).bind(error.clone()).bind(id),
        };
        query.execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn logouts_of_session(&self, sid: &str) -> StoreResult<Vec<(LogoutDelivery, Option<UnixTime>)>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS}, delivered_at FROM logout_deliveries WHERE sid = $1 ORDER BY created_at, id"))
            .bind(sid)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| Ok((delivery_from_row(row)?, row.try_get("delivered_at").map_err(|e| StoreError::Other(format!("logout_deliveries row: {e}")))?)))
            .collect()
    }

    async fn prune_logouts(&self, before: UnixTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM logout_deliveries WHERE created_at < $1 AND (delivered_at IS NOT NULL OR given_up_at IS NOT NULL)")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
