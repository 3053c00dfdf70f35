//! Signing keys (private parts encrypted) and the per-algorithm generation row rotation
//! compares and sets.

use crate::crypto::alg::SigningAlg;
use async_trait::async_trait;
use sqlx::Row;

use super::{map_err, SqlStore};
use crate::store::{SigningKeyStore, StoreError, StoredSigningKey, StoreResult};

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key_sealed, public_jwk, created_at, activates_at FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let get = |e: sqlx::Error| StoreError::Other(format!("signing_keys row: {e}"));
        rows.iter()
            .map(|row| {
                Ok(StoredSigningKey {
                    kid: row.try_get("kid").map_err(get)?,
                    alg: parse_alg(&row.try_get::<String, _>("alg").map_err(get)?)?,
                    private_key_sealed: row.try_get("private_key_sealed").map_err(get)?,
                    public_jwk: row.try_get("public_jwk").map_err(get)?,
                    created_at: row.try_get("created_at").map_err(get)?,
                    activates_at: row.try_get("activates_at").map_err(get)?,
                })
            })
            .collect()
    }

    async fn key_generation(&self, alg: SigningAlg) -> StoreResult<i64> {
        let row = sqlx::query("SELECT generation FROM signing_key_generations WHERE alg = $1")
            .bind(alg.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        match row {
            Some(row) => row.try_get("generation").map_err(|e| StoreError::Other(e.to_string())),
            None => Err(StoreError::Other(format!("no key generation row for {alg}"))),
        }
    }

    async fn change_keys(&self, alg: SigningAlg, expected: i64, add: Option<&StoredSigningKey>, remove: &[String]) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The conditional update is the compare-and-set: a concurrent writer either blocks us
        // until it commits (then we match no row) or has not started (then it will match none).
        let bumped = sqlx::query("UPDATE signing_key_generations SET generation = generation + 1 WHERE alg = $1 AND generation = $2")
            .bind(alg.as_str())
            .bind(expected)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if bumped.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        if let Some(k) = add {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_key_sealed, public_jwk, created_at, activates_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(k.private_key_sealed.clone())
            .bind(&k.public_jwk)
            .bind(k.created_at)
            .bind(k.activates_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for kid in remove {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1 AND alg = $2").bind(kid).bind(alg.as_str()).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

/// An algorithm column: an unknown name is corruption, not a key to skip.
pub(super) fn parse_alg(text: &str) -> StoreResult<SigningAlg> {
    SigningAlg::parse(text).ok_or_else(|| StoreError::Other(format!("corrupt alg column: `{text}`")))
}
