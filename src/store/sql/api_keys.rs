//! API keys, stored by hash: issue, rotate (successor and retirement together), revoke, last use;
//! each administrative write with its audit event, in one transaction.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::insert_audit;
use super::denials::insert_denial;
use super::{from_json, json_value, map_err, to_json, SqlStore};
use crate::clock::UnixTime;
use crate::store::{ApiKey, ApiKeyStore, AuditEvent, Denial, StoreError, StoreResult};

const COLUMNS: &str = "id, name, env, key_hash, prefix, scopes, created_at, expires_at, cidrs, rate_limit_per_minute, \
     metadata, last_used_at, last_used_from, revoked_at, grace_until, replaced_by";

fn key_from_row(row: &AnyRow) -> StoreResult<ApiKey> {
    let get = |e: sqlx::Error| StoreError::Other(format!("api_keys row: {e}"));
    let metadata: String = row.try_get("metadata").map_err(get)?;
    Ok(ApiKey {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        env: row.try_get("env").map_err(get)?,
        key_hash: row.try_get("key_hash").map_err(get)?,
        prefix: row.try_get("prefix").map_err(get)?,
        scopes: from_json(&row.try_get::<String, _>("scopes").map_err(get)?)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        cidrs: from_json(&row.try_get::<String, _>("cidrs").map_err(get)?)?,
        rate_limit_per_minute: row.try_get("rate_limit_per_minute").map_err(get)?,
        metadata: json_value(&metadata, "api_keys.metadata")?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
        last_used_from: row.try_get("last_used_from").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
        grace_until: row.try_get("grace_until").map_err(get)?,
        replaced_by: row.try_get("replaced_by").map_err(get)?,
    })
}

impl SqlStore {
    async fn api_key_where(&self, column: &str, value: Vec<u8>, text: Option<&str>) -> StoreResult<Option<ApiKey>> {
        let query = format!("SELECT {COLUMNS} FROM api_keys WHERE {column} = $1");
        let q = sqlx::query(&query);
        let q = match text {
            Some(t) => q.bind(t.to_string()),
            None => q.bind(value),
        };
        let row = q.fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(key_from_row).transpose()
    }
}

async fn insert_key(conn: &mut AnyConnection, k: &ApiKey) -> StoreResult<()> {
    sqlx::query(&format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"))
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.env)
        .bind(k.key_hash.clone())
        .bind(&k.prefix)
        .bind(to_json(&k.scopes))
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(to_json(&k.cidrs))
        .bind(k.rate_limit_per_minute)
        .bind(k.metadata.to_string())
        .bind(k.last_used_at)
        .bind(k.last_used_from.clone())
        .bind(k.revoked_at)
        .bind(k.grace_until)
        .bind(k.replaced_by.clone())
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_key(&mut tx, key).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ApiKey>> {
        self.api_key_where("key_hash", hash.to_vec(), None).await
    }

    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        self.api_key_where("id", vec![], Some(id)).await
    }

    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id")).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str, now: UnixTime, tokens: &Denial, audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        insert_denial(&mut tx, tokens).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn rotate_api_key(&self, id: &str, successor: &ApiKey, grace_until: UnixTime, audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The conditional update is the compare-and-set: of two concurrent rotations of a key,
        // one retires it and the other matches nothing and inserts nothing.
        let retired = sqlx::query("UPDATE api_keys SET replaced_by = $1, grace_until = $2 WHERE id = $3 AND revoked_at IS NULL AND replaced_by IS NULL")
            .bind(&successor.id)
            .bind(grace_until)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if retired.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        insert_key(&mut tx, successor).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn touch_api_key(&self, id: &str, at: UnixTime, from: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1, last_used_from = $2 WHERE id = $3")
            .bind(at)
            .bind(from.map(str::to_string))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
