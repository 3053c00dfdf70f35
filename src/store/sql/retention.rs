//! API-key usage per minute, and the pruning of audit events, ended API keys, old usage and
//! ended refresh-token families.

use async_trait::async_trait;
use sqlx::Row;

use super::{map_err, SqlStore};
use crate::clock::UnixTime;
use crate::store::{ApiKeyUsage, ApiKeyUsageStore, RetentionStore, StoreError, StoreResult};

/// Rows per INSERT: 5 binds each, well under SQLite's and PostgreSQL's bind limits.
const ROWS_PER_INSERT: usize = 200;

#[async_trait]
impl ApiKeyUsageStore for SqlStore {
    async fn record_api_key_usage(&self, rows: &[ApiKeyUsage]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len()).map(|i| {
                let b = i * 5;
                format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5)
            }).collect();
            let sql = format!(
                "INSERT INTO api_key_usage (key_id, minute, requests, rate_limited, denied) VALUES {} \
                 ON CONFLICT (key_id, minute) DO UPDATE SET requests = excluded.requests, rate_limited = excluded.rate_limited, denied = excluded.denied",
                values.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query.bind(&row.key_id).bind(row.minute).bind(row.requests).bind(row.rate_limited).bind(row.denied);
            }
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn api_key_usage(&self, key_id: &str, since: UnixTime) -> StoreResult<Vec<ApiKeyUsage>> {
        let rows = sqlx::query("SELECT key_id, minute, requests, rate_limited, denied FROM api_key_usage WHERE key_id = $1 AND minute >= $2 ORDER BY minute")
            .bind(key_id)
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let get = |e: sqlx::Error| StoreError::Other(format!("api_key_usage row: {e}"));
        rows.iter()
            .map(|r| {
                Ok(ApiKeyUsage {
                    key_id: r.try_get("key_id").map_err(get)?,
                    minute: r.try_get("minute").map_err(get)?,
                    requests: r.try_get("requests").map_err(get)?,
                    rate_limited: r.try_get("rate_limited").map_err(get)?,
                    denied: r.try_get("denied").map_err(get)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl RetentionStore for SqlStore {
    async fn prune_audit(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        self.delete_batch("DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 ORDER BY at LIMIT $2)", before, limit).await
    }

    async fn prune_api_keys(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        // A key stops working at the first of: revocation, expiry, the end of its rotation grace.
        let ended = "SELECT id FROM api_keys WHERE revoked_at < $1 OR expires_at < $1 OR grace_until < $1 LIMIT $2";
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let ids: Vec<String> = sqlx::query(ended)
            .bind(before)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.try_get("id").map_err(|e| StoreError::Other(format!("api_keys row: {e}"))))
            .collect::<StoreResult<_>>()?;
        for id in &ids {
            sqlx::query("DELETE FROM api_key_usage WHERE key_id = $1").bind(id).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(ids.len() as u64)
    }

    async fn prune_api_key_usage(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        // The primary key leads with key_id: pick the batch through the index on minute.
        self.delete_batch(
            "DELETE FROM api_key_usage WHERE (key_id, minute) IN (SELECT key_id, minute FROM api_key_usage WHERE minute < $1 ORDER BY minute LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn prune_refresh_families(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        // Tokens and access-token records go with their family (ON DELETE CASCADE).
        self.delete_batch(
            "DELETE FROM refresh_families WHERE id IN (SELECT id FROM refresh_families WHERE absolute_expires_at < $1 \
             UNION SELECT id FROM refresh_families WHERE revoked_at < $1 LIMIT $2)",
            before,
            limit,
        )
        .await
    }
}

impl SqlStore {
    async fn delete_batch(&self, sql: &str, before: UnixTime, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql).bind(before).bind(limit).execute(&self.pool).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
