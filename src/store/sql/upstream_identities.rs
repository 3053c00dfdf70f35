//! Links to upstream identities, and the groups of each user's last upstream sign-in.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::audit::insert_audit;
use super::users::{insert_user_on, user_from_row, COLUMNS as USER_COLUMNS};
use super::{from_json, map_err, to_json, SqlStore};
use crate::clock::UnixTime;
use crate::store::{AuditEvent, StoreError, StoreResult, UpstreamIdentityStore, UpstreamLink, User};

fn link_from_row(row: &AnyRow) -> StoreResult<UpstreamLink> {
    let get = |e: sqlx::Error| StoreError::Other(format!("upstream_identities row: {e}"));
    Ok(UpstreamLink {
        provider_id: row.try_get("provider_id").map_err(get)?,
        upstream_subject: row.try_get("upstream_subject").map_err(get)?,
        sub: row.try_get("sub").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        last_sign_in_at: row.try_get("last_sign_in_at").map_err(get)?,
    })
}

#[async_trait]
impl UpstreamIdentityStore for SqlStore {
    async fn upstream_link(&self, provider_id: &str, upstream_subject: &str) -> StoreResult<Option<UpstreamLink>> {
        let row = sqlx::query("SELECT provider_id, upstream_subject, sub, created_at, last_sign_in_at FROM upstream_identities WHERE provider_id = $1 AND upstream_subject = $2")
            .bind(provider_id)
            .bind(upstream_subject)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(link_from_row).transpose()
    }

    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1) ORDER BY username"))
            .bind(email)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn insert_upstream_link(&self, link: &UpstreamLink, new_user: Option<&User>, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(user) = new_user {
            insert_user_on(&mut tx, user).await?;
        }
        sqlx::query("INSERT INTO upstream_identities (provider_id, upstream_subject, sub, created_at, last_sign_in_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&link.provider_id)
            .bind(&link.upstream_subject)
            .bind(&link.sub)
            .bind(link.created_at)
            .bind(link.last_sign_in_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn record_upstream_sign_in(&self, link: &UpstreamLink, groups: &[String], now: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("UPDATE upstream_identities SET last_sign_in_at = $1 WHERE provider_id = $2 AND upstream_subject = $3")
            .bind(now)
            .bind(&link.provider_id)
            .bind(&link.upstream_subject)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("INSERT INTO user_groups (sub, groups, updated_at) VALUES ($1, $2, $3) ON CONFLICT (sub) DO UPDATE SET groups = excluded.groups, updated_at = excluded.updated_at")
            .bind(&link.sub)
            .bind(to_json(groups))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn user_groups(&self, sub: &str) -> StoreResult<Vec<String>> {
        let row = sqlx::query("SELECT groups FROM user_groups WHERE sub = $1").bind(sub).fetch_optional(&self.pool).await.map_err(map_err)?;
        match row {
            Some(row) => from_json(&row.try_get::<String, _>("groups").map_err(|e| StoreError::Other(format!("user_groups row: {e}")))?),
            None => Ok(Vec::new()),
        }
    }
}
