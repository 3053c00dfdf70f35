//! What each user allowed each client.

use async_trait::async_trait;
use sqlx::Row;

use super::{from_json, map_err, to_json, SqlStore};
use crate::clock::UnixTime;
use crate::store::{ConsentStore, StoreError, StoreResult};

#[async_trait]
impl ConsentStore for SqlStore {
    async fn consented_scopes(&self, sub: &str, client_id: &str) -> StoreResult<Vec<String>> {
        let row = sqlx::query("SELECT scopes FROM consents WHERE sub = $1 AND client_id = $2")
            .bind(sub)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        match row {
            Some(row) => from_json(&row.try_get::<String, _>("scopes").map_err(|e| StoreError::Other(e.to_string()))?),
            None => Ok(vec![]),
        }
    }

    async fn save_consent(&self, sub: &str, client_id: &str, scopes: &[String], now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (sub, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sub, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(sub)
        .bind(client_id)
        .bind(to_json(scopes))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn revoke_consent(&self, sub: &str, client_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM consents WHERE sub = $1 AND client_id = $2").bind(sub).bind(client_id).execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }
}
