//! Roles granted to users.

use async_trait::async_trait;
use sqlx::Row;

use super::{map_err, SqlStore};
use crate::clock::UnixTime;
use crate::store::{RoleStore, StoreError, StoreResult};

#[async_trait]
impl RoleStore for SqlStore {
    async fn user_roles(&self, sub: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT role FROM user_roles WHERE sub = $1 ORDER BY role").bind(sub).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(|r| r.try_get::<String, _>("role").map_err(|e| StoreError::Other(format!("user_roles row: {e}")))).collect()
    }

    async fn grant_role(&self, sub: &str, role: &str, now: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query("INSERT INTO user_roles (sub, role, granted_at) VALUES ($1, $2, $3) ON CONFLICT (sub, role) DO NOTHING")
            .bind(sub)
            .bind(role)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_role(&self, sub: &str, role: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM user_roles WHERE sub = $1 AND role = $2").bind(sub).bind(role).execute(&self.pool).await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
