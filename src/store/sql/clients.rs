//! Registered clients: each administrative write with its audit event, in one transaction.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::audit::insert_audit;
use super::{from_json, map_err, to_json, SqlStore};
use crate::store::{AuditEvent, AuthMethod, Client, ClientStore, StoreError, StoreResult};

const COLUMNS: &str = "id, name, secret_hash, auth_method, redirect_uris, post_logout_redirect_uris, grant_types, \
     scopes, jwks_uri, jwks, first_party, access_token_alg, access_token_ttl, created_at, require_mfa, backchannel_logout_uri, backchannel_logout_session_required, tls_client_auth_subject_dn, tls_client_auth_san_dns, require_dpop, require_par";

fn client_from_row(row: &AnyRow) -> StoreResult<Client> {
    let get = |e: sqlx::Error| StoreError::Other(format!("clients row: {e}"));
    let method: String = row.try_get("auth_method").map_err(get)?;
    Ok(Client {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        secret_hash: row.try_get("secret_hash").map_err(get)?,
        auth_method: AuthMethod::parse(&method).ok_or_else(|| StoreError::Other(format!("unknown auth method {method}")))?,
        redirect_uris: from_json(&row.try_get::<String, _>("redirect_uris").map_err(get)?)?,
        post_logout_redirect_uris: from_json(&row.try_get::<String, _>("post_logout_redirect_uris").map_err(get)?)?,
        grant_types: from_json(&row.try_get::<String, _>("grant_types").map_err(get)?)?,
        scopes: from_json(&row.try_get::<String, _>("scopes").map_err(get)?)?,
        jwks_uri: row.try_get("jwks_uri").map_err(get)?,
        jwks: row.try_get("jwks").map_err(get)?,
        first_party: row.try_get::<i64, _>("first_party").map_err(get)? != 0,
        access_token_alg: row.try_get::<Option<String>, _>("access_token_alg").map_err(get)?.as_deref().map(super::keys::parse_alg).transpose()?,
        access_token_ttl: row.try_get("access_token_ttl").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        require_mfa: row.try_get::<i64, _>("require_mfa").map_err(get)? != 0,
        backchannel_logout_uri: row.try_get("backchannel_logout_uri").map_err(get)?,
        backchannel_logout_session_required: row.try_get::<i64, _>("backchannel_logout_session_required").map_err(get)? != 0,
        tls_client_auth_subject_dn: row.try_get("tls_client_auth_subject_dn").map_err(get)?,
        tls_client_auth_san_dns: row.try_get("tls_client_auth_san_dns").map_err(get)?,
        require_dpop: row.try_get::<i64, _>("require_dpop").map_err(get)? != 0,
        require_par: row.try_get::<i64, _>("require_par").map_err(get)? != 0,
    })
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn insert_client(&self, c: &Client, audit: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ))
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.secret_hash.clone())
        .bind(c.auth_method.as_str())
        .bind(to_json(&c.redirect_uris))
        .bind(to_json(&c.post_logout_redirect_uris))
        .bind(to_json(&c.grant_types))
        .bind(to_json(&c.scopes))
        .bind(c.jwks_uri.clone())
        .bind(c.jwks.clone())
        .bind(c.first_party as i64)
        .bind(c.access_token_alg.map(|a| a.as_str().to_string()))
        .bind(c.access_token_ttl)
        .bind(c.created_at)
        .bind(c.require_mfa as i64)
        .bind(c.backchannel_logout_uri.clone())
        .bind(c.backchannel_logout_session_required as i64)
        .bind(c.tls_client_auth_subject_dn.clone())
        .bind(c.tls_client_auth_san_dns.clone())
        .bind(c.require_dpop as i64)
        .bind(c.require_par as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn client(&self, id: &str) -> StoreResult<Option<Client>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn clients(&self) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM clients ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn delete_client(&self, id: &str, audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM clients WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn set_client_secret_hash(&self, id: &str, hash: &[u8], audit: &AuditEvent) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
            .bind(hash.to_vec())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}
