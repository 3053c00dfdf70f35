//! Revoked access tokens: the durable record behind the deny list.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::{map_err, SqlStore};
use crate::clock::UnixTime;
use crate::store::{Denial, DenialKind, DenialStore, StoreError, StoreResult};

/// Records a denial, or widens an existing one; on any connection, so a revocation can share
/// its transaction.
pub(super) async fn insert_denial(conn: &mut AnyConnection, d: &Denial) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_token_denials (kind, subject, issued_before, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (kind, subject) DO UPDATE SET \
         issued_before = CASE WHEN excluded.issued_before > access_token_denials.issued_before THEN excluded.issued_before ELSE access_token_denials.issued_before END, \
         expires_at = CASE WHEN excluded.expires_at > access_token_denials.expires_at THEN excluded.expires_at ELSE access_token_denials.expires_at END",
    )
    .bind(d.kind.as_str())
    .bind(&d.subject)
    .bind(d.issued_before)
    .bind(d.expires_at)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl DenialStore for SqlStore {
    async fn insert_denial(&self, d: &Denial) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_denial(&mut conn, d).await
    }

    async fn live_denials(&self, now: UnixTime) -> StoreResult<Vec<Denial>> {
        sqlx::query("DELETE FROM access_token_denials WHERE expires_at <= $1").bind(now).execute(&self.pool).await.map_err(map_err)?;
        let rows = sqlx::query("SELECT kind, subject, issued_before, expires_at FROM access_token_denials WHERE expires_at > $1")
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        let get = |e: sqlx::Error| StoreError::Other(format!("access_token_denials row: {e}"));
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind").map_err(get)?;
                Ok(Denial {
                    kind: DenialKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("unknown denial kind `{kind}`")))?,
                    subject: row.try_get("subject").map_err(get)?,
                    issued_before: row.try_get("issued_before").map_err(get)?,
                    expires_at: row.try_get("expires_at").map_err(get)?,
                })
            })
            .collect()
    }
}
