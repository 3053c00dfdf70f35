//! Second factors and recovery codes. A code is spent by a conditional update, so of any number
//! of concurrent uses exactly one changes a row; every administrative write commits with its
//! audit event.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::insert_audit;
use super::{map_err, SqlStore};
use crate::clock::UnixTime;
use crate::store::{AuditEvent, Factor, FactorKind, FactorStore, StoreError, StoreResult};

const COLUMNS: &str = "id, sub, kind, name, secret_sealed, last_step, credential, confirmed_at, created_at, last_used_at";

fn factor_from_row(row: &AnyRow) -> StoreResult<Factor> {
    let get = |e: sqlx::Error| StoreError::Other(format!("user_factors row: {e}"));
    let kind: String = row.try_get("kind").map_err(get)?;
    Ok(Factor {
        id: row.try_get("id").map_err(get)?,
        sub: row.try_get("sub").map_err(get)?,
        kind: FactorKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("user_factors row: unknown kind `{kind}`")))?,
        name: row.try_get("name").map_err(get)?,
        secret_sealed: row.try_get("secret_sealed").map_err(get)?,
        last_step: row.try_get("last_step").map_err(get)?,
        credential: row.try_get("credential").map_err(get)?,
        confirmed_at: row.try_get("confirmed_at").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
    })
}

/// Commits `tx` after appending `audit` when `changed`; rolls it back otherwise.
async fn finish(mut tx: sqlx::Transaction<'_, sqlx::Any>, changed: bool, audit: &AuditEvent) -> StoreResult<bool> {
    if !changed {
        tx.rollback().await.map_err(map_err)?;
        return Ok(false);
    }
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}

async fn delete_codes(conn: &mut AnyConnection, sub: &str) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM recovery_codes WHERE sub = $1").bind(sub).execute(conn).await.map_err(map_err)?;
    Ok(done.rows_affected())
}

#[async_trait]
impl FactorStore for SqlStore {
    async fn insert_factor(&self, f: &Factor, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM user_factors WHERE sub = $1 AND kind = $2 AND confirmed_at IS NULL")
            .bind(&f.sub)
            .bind(f.kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&format!("INSERT INTO user_factors ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
            .bind(&f.id)
            .bind(&f.sub)
            .bind(f.kind.as_str())
            .bind(&f.name)
            .bind(f.secret_sealed.clone())
            .bind(f.last_step)
            .bind(f.credential.clone())
            .bind(f.confirmed_at)
            .bind(f.created_at)
            .bind(f.last_used_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        finish(tx, true, audit).await.map(|_| ())
    }

    async fn factor(&self, id: &str) -> StoreResult<Option<Factor>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM user_factors WHERE id = $1")).bind(id).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(factor_from_row).transpose()
    }

    async fn factors(&self, sub: &str) -> StoreResult<Vec<Factor>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM user_factors WHERE sub = $1 ORDER BY created_at, id"))
            .bind(sub)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn confirm_factor(&self, id: &str, step: i64, now: UnixTime, audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("UPDATE user_factors SET confirmed_at = $1, last_step = $2 WHERE id = $3 AND confirmed_at IS NULL AND last_step < $2")
            .bind(now)
            .bind(step)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        finish(tx, done.rows_affected() == 1, audit).await
    }

    async fn accept_factor_step(&self, id: &str, step: i64, now: UnixTime) -> StoreResult<bool> {
        // The compare-and-set: of two verifications of the same code, the second finds
        // `last_step` already at `step` and changes nothing.
        let done = sqlx::query("UPDATE user_factors SET last_step = $1, last_used_at = $2 WHERE id = $3 AND confirmed_at IS NOT NULL AND last_step < $1")
            .bind(step)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_passkey(&self, id: &str, expected: &str, credential: &str, now: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE user_factors SET credential = $1, last_used_at = $2 WHERE id = $3 AND kind = 'passkey' AND confirmed_at IS NOT NULL AND credential = $4")
            .bind(credential)
            .bind(now)
            .bind(id)
            .bind(expected)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_factor(&self, sub: &str, id: &str, audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM user_factors WHERE id = $1 AND sub = $2").bind(id).bind(sub).execute(&mut *tx).await.map_err(map_err)?;
        finish(tx, done.rows_affected() == 1, audit).await
    }

    async fn delete_all_factors(&self, sub: &str, audit: &AuditEvent) -> StoreResult<(u64, u64)> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let factors = sqlx::query("DELETE FROM user_factors WHERE sub = $1").bind(sub).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
        let codes = delete_codes(&mut tx, sub).await?;
        finish(tx, true, audit).await?;
        Ok((factors, codes))
    }

    async fn replace_recovery_codes(&self, sub: &str, hashes: &[Vec<u8>], now: UnixTime, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        delete_codes(&mut tx, sub).await?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (sub, code_hash, created_at, used_at) VALUES ($1, $2, $3, NULL)")
                .bind(sub)
                .bind(hash.clone())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        finish(tx, true, audit).await.map(|_| ())
    }

    async fn use_recovery_code(&self, sub: &str, hash: &[u8], now: UnixTime, audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE sub = $2 AND code_hash = $3 AND used_at IS NULL")
            .bind(now)
            .bind(sub)
            .bind(hash.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        finish(tx, done.rows_affected() == 1, audit).await
    }

    async fn recovery_codes_left(&self, sub: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM recovery_codes WHERE sub = $1 AND used_at IS NULL").bind(sub).fetch_one(&self.pool).await.map_err(map_err)?;
        row.try_get::<i64, _>("n").map_err(|e| StoreError::Other(format!("recovery_codes count: {e}")))
    }
}
