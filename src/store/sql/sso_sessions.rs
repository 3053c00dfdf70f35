//! The SSO session registry: a row per session, a row per client that got a code in it. Ending
//! a session is one transaction: the mark (a conditional update, so one caller wins), the
//! revocation of the refresh-token families issued in it, and the audit event.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::insert_audit;
use super::{from_json, map_err, to_json, SqlStore};
use crate::clock::UnixTime;
use crate::store::{AuditEvent, EndedSsoSession, SsoSession, SsoSessionStore, SsoSessionWithClients, StoreError, StoreResult};

const COLUMNS: &str = "sid, sub, key_hash, created_at, auth_time, factor_proven_at, amr, last_seen_at, expires_at, \
     absolute_expires_at, ip, user_agent, ended_at, end_reason";

/// Sessions neither ended nor expired at `$1`.
const LIVE: &str = "ended_at IS NULL AND expires_at > $1";

fn session_from_row(row: &AnyRow) -> StoreResult<SsoSession> {
    let get = |e: sqlx::Error| StoreError::Other(format!("sso_sessions row: {e}"));
    Ok(SsoSession {
        sid: row.try_get("sid").map_err(get)?,
        sub: row.try_get("sub").map_err(get)?,
        key_hash: row.try_get("key_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        auth_time: row.try_get("auth_time").map_err(get)?,
        factor_proven_at: row.try_get("factor_proven_at").map_err(get)?,
        amr: from_json(&row.try_get::<String, _>("amr").map_err(get)?)?,
        last_seen_at: row.try_get("last_seen_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        absolute_expires_at: row.try_get("absolute_expires_at").map_err(get)?,
        ip: row.try_get("ip").map_err(get)?,
        user_agent: row.try_get("user_agent").map_err(get)?,
        ended_at: row.try_get("ended_at").map_err(get)?,
        end_reason: row.try_get("end_reason").map_err(get)?,
    })
}

async fn session_in(conn: &mut AnyConnection, sid: &str) -> StoreResult<Option<SsoSession>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sso_sessions WHERE sid = $1")).bind(sid).fetch_optional(conn).await.map_err(map_err)?;
    row.as_ref().map(session_from_row).transpose()
}

async fn clients_in(conn: &mut AnyConnection, sid: &str) -> StoreResult<Vec<String>> {
    let rows = sqlx::query("SELECT client_id FROM sso_session_clients WHERE sid = $1 ORDER BY first_at, client_id")
        .bind(sid)
        .fetch_all(conn)
        .await
        .map_err(map_err)?;
    rows.iter().map(|r| r.try_get("client_id").map_err(map_err)).collect()
}

/// Revokes every live refresh-token family with a token issued in session `sid`; returns the
/// families and the unexpired access tokens issued in them.
async fn revoke_grants_in(conn: &mut AnyConnection, sid: &str, now: UnixTime) -> StoreResult<(Vec<String>, Vec<(String, UnixTime)>)> {
    let rows = sqlx::query(
        "SELECT DISTINCT t.family_id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
         WHERE t.sid = $1 AND f.revoked_at IS NULL ORDER BY t.family_id",
    )
    .bind(sid)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    let families: Vec<String> = rows.iter().map(|r| r.try_get("family_id").map_err(map_err)).collect::<StoreResult<_>>()?;
    if families.is_empty() {
        return Ok((families, Vec::new()));
    }
    sqlx::query("UPDATE refresh_families SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN (SELECT family_id FROM refresh_tokens WHERE sid = $2)")
        .bind(now)
        .bind(sid)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND sid = $2")
        .bind(now)
        .bind(sid)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    let rows = sqlx::query(
        "SELECT a.jti, a.expires_at FROM refresh_family_access_tokens a \
         WHERE a.expires_at > $1 AND a.family_id IN (SELECT family_id FROM refresh_tokens WHERE sid = $2) ORDER BY a.jti",
    )
    .bind(now)
    .bind(sid)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    let access = rows
        .iter()
        .map(|r| Ok((r.try_get("jti").map_err(map_err)?, r.try_get("expires_at").map_err(map_err)?)))
        .collect::<StoreResult<_>>()?;
    Ok((families, access))
}

/// One back-channel logout delivery per client of the session that registered a URI, in the
/// transaction that ends it: a crash right after the end loses none. A session ends once, so
/// `sid:client_id` names each delivery.
async fn queue_backchannel_logouts(tx: &mut sqlx::Transaction<'_, sqlx::Any>, session: &SsoSession, now: UnixTime) -> StoreResult<u64> {
    let queued = sqlx::query(
        "INSERT INTO logout_deliveries (id, client_id, sub, sid, created_at, attempts, next_attempt_at) \
         SELECT CAST($1 AS TEXT) || ':' || c.id, c.id, $2, $1, $3, 0, $3 FROM sso_session_clients sc JOIN clients c ON c.id = sc.client_id \
         WHERE sc.sid = $1 AND c.backchannel_logout_uri IS NOT NULL",
    )
    .bind(&session.sid)
    .bind(&session.sub)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(queued.rows_affected())
}

#[async_trait]
impl SsoSessionStore for SqlStore {
    async fn insert_sso_session(&self, s: &SsoSession) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO sso_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
            .bind(&s.sid)
            .bind(&s.sub)
            .bind(&s.key_hash)
            .bind(s.created_at)
            .bind(s.auth_time)
            .bind(s.factor_proven_at)
            .bind(to_json(&s.amr))
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .bind(s.absolute_expires_at)
            .bind(s.ip.clone())
            .bind(s.user_agent.clone())
            .bind(s.ended_at)
            .bind(s.end_reason.clone())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn sso_session(&self, sid: &str) -> StoreResult<Option<SsoSession>> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        session_in(&mut conn, sid).await
    }

    async fn touch_sso_session(&self, sid: &str, now: UnixTime, expires_at: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE sso_sessions SET last_seen_at = $1, expires_at = $2 WHERE sid = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(expires_at)
            .bind(sid)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_sso_session_factor(&self, sid: &str, amr: &[String], at: UnixTime, expires_at: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sso_sessions SET amr = $1, factor_proven_at = $2, last_seen_at = $2, expires_at = $3 WHERE sid = $4 AND ended_at IS NULL",
        )
        .bind(to_json(amr))
        .bind(at)
        .bind(expires_at)
        .bind(sid)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_sso_session_client(&self, sid: &str, client_id: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO sso_session_clients (sid, client_id, first_at) VALUES ($1, $2, $3) ON CONFLICT (sid, client_id) DO NOTHING")
            .bind(sid)
            .bind(client_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn live_sso_sessions(&self, sub: Option<&str>, now: UnixTime) -> StoreResult<Vec<SsoSessionWithClients>> {
        let of_user = if sub.is_some() { " AND sub = $2" } else { "" };
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        let sessions_sql = format!("SELECT {COLUMNS} FROM sso_sessions WHERE {LIVE}{of_user} ORDER BY created_at DESC, sid");
        let clients_sql =
            format!("SELECT sid, client_id FROM sso_session_clients WHERE sid IN (SELECT sid FROM sso_sessions WHERE {LIVE}{of_user}) ORDER BY first_at, client_id");
        let mut sessions = sqlx::query(&sessions_sql).bind(now);
        let mut clients = sqlx::query(&clients_sql).bind(now);
        if let Some(sub) = sub {
            sessions = sessions.bind(sub);
            clients = clients.bind(sub);
        }
        let rows = sessions.fetch_all(&mut *conn).await.map_err(map_err)?;
        let mut by_sid: HashMap<String, Vec<String>> = HashMap::new();
        for row in clients.fetch_all(&mut *conn).await.map_err(map_err)? {
            by_sid.entry(row.try_get("sid").map_err(map_err)?).or_default().push(row.try_get("client_id").map_err(map_err)?);
        }
        rows.iter()
            .map(|row| {
                let session = session_from_row(row)?;
                let clients = by_sid.remove(&session.sid).unwrap_or_default();
                Ok(SsoSessionWithClients { session, clients })
            })
            .collect()
    }

    async fn end_sso_session(&self, sid: &str, reason: &str, revoke_grants: bool, now: UnixTime, audit: &AuditEvent) -> StoreResult<Option<EndedSsoSession>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The conditional update is the lock: a concurrent end waits for this transaction, then
        // matches nothing.
        let marked = sqlx::query("UPDATE sso_sessions SET ended_at = $1, end_reason = $2, expires_at = $1 WHERE sid = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(reason)
            .bind(sid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if marked.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(None);
        }
        let session = session_in(&mut tx, sid).await?.ok_or_else(|| StoreError::Other(format!("sso session {sid} vanished while it was ended")))?;
        let clients = clients_in(&mut tx, sid).await?;
        let (revoked_families, access_tokens) = if revoke_grants { revoke_grants_in(&mut tx, sid, now).await? } else { (Vec::new(), Vec::new()) };
        let logouts_queued = if revoke_grants { queue_backchannel_logouts(&mut tx, &session, now).await? } else { 0 };
        insert_audit(&mut tx, audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(EndedSsoSession { session, clients, revoked_families, access_tokens, logouts_queued }))
    }

    async fn prune_sso_sessions(&self, before: UnixTime, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sso_sessions WHERE sid IN (SELECT sid FROM sso_sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)")
            .bind(before)
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
