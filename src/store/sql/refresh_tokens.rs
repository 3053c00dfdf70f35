//! Refresh-token families and their tokens: rotation (compare-and-set, successor and access jti in
//! one transaction), family revocation.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{from_json, map_err, to_json, SqlStore};
use crate::clock::UnixTime;
use crate::store::{RefreshFamily, RefreshToken, RefreshTokenStore, StoreError, StoreResult};

const COLUMNS: &str = "t.token_hash, t.family_id, t.client_id, t.sub, t.scopes, t.auth_time, t.sid, t.created_at, \
     t.idle_expires_at, t.used_at, t.revoked_at, f.absolute_expires_at, f.revoked_at AS family_revoked_at, f.dpop_jkt, f.x5t_s256";

fn token_from_row(row: &AnyRow) -> StoreResult<RefreshToken> {
    let get = |e: sqlx::Error| StoreError::Other(format!("refresh_tokens row: {e}"));
    let token_revoked: Option<i64> = row.try_get("revoked_at").map_err(get)?;
    let family_revoked: Option<i64> = row.try_get("family_revoked_at").map_err(get)?;
    Ok(RefreshToken {
        token_hash: row.try_get("token_hash").map_err(get)?,
        family_id: row.try_get("family_id").map_err(get)?,
        client_id: row.try_get("client_id").map_err(get)?,
        sub: row.try_get("sub").map_err(get)?,
        scopes: from_json(&row.try_get::<String, _>("scopes").map_err(get)?)?,
        auth_time: row.try_get("auth_time").map_err(get)?,
        sid: row.try_get("sid").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        idle_expires_at: row.try_get("idle_expires_at").map_err(get)?,
        absolute_expires_at: row.try_get("absolute_expires_at").map_err(get)?,
        used_at: row.try_get("used_at").map_err(get)?,
        revoked_at: token_revoked.or(family_revoked),
        dpop_jkt: row.try_get("dpop_jkt").map_err(get)?,
        x5t_s256: row.try_get("x5t_s256").map_err(get)?,
    })
}

async fn insert_family(conn: &mut AnyConnection, f: &RefreshFamily) -> StoreResult<()> {
    sqlx::query("INSERT INTO refresh_families (id, client_id, sub, created_at, absolute_expires_at, dpop_jkt, x5t_s256) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&f.id)
        .bind(&f.client_id)
        .bind(&f.sub)
        .bind(f.created_at)
        .bind(f.absolute_expires_at)
        .bind(f.dpop_jkt.clone())
        .bind(f.x5t_s256.clone())
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn insert_token(conn: &mut AnyConnection, t: &RefreshToken) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, scopes, auth_time, sid, created_at, idle_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.token_hash.clone())
    .bind(&t.family_id)
    .bind(&t.client_id)
    .bind(&t.sub)
    .bind(to_json(&t.scopes))
    .bind(t.auth_time)
    .bind(t.sid.clone())
    .bind(t.created_at)
    .bind(t.idle_expires_at)
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_access_jti(conn: &mut AnyConnection, family_id: &str, jti: &str, expires_at: UnixTime) -> StoreResult<()> {
    sqlx::query("INSERT INTO refresh_family_access_tokens (family_id, jti, expires_at) VALUES ($1, $2, $3)")
        .bind(family_id)
        .bind(jti)
        .bind(expires_at)
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// The successor and its access token's jti, in the caller's transaction.
async fn insert_successor(conn: &mut AnyConnection, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()> {
    insert_token(conn, successor).await?;
    insert_access_jti(conn, &successor.family_id, access_jti, access_exp).await
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn start_refresh_family(&self, family: &RefreshFamily, first: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_family(&mut tx, family).await?;
        insert_successor(&mut tx, first, access_jti, access_exp).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshToken>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1"))
            .bind(hash.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn rotate_refresh_token(&self, presented_hash: &[u8], now: UnixTime, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The conditional update is the lock: a concurrent rotation of the same token waits (on the
        // row in PostgreSQL, the write lock in SQLite) until this transaction ends, then matches
        // nothing if it committed, or wins if it rolled back.
        let marked = sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)")
            .bind(now)
            .bind(presented_hash.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if marked.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        insert_successor(&mut tx, successor, access_jti, access_exp).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn add_refresh_successor(&self, successor: &RefreshToken, access_jti: &str, access_exp: UnixTime) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_successor(&mut tx, successor, access_jti, access_exp).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: UnixTime) -> StoreResult<Vec<(String, UnixTime)>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query("SELECT jti, expires_at FROM refresh_family_access_tokens WHERE family_id = $1 AND expires_at > $2")
            .bind(family_id)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("jti").map_err(map_err)?, r.try_get("expires_at").map_err(map_err)?)))
            .collect()
    }
}
