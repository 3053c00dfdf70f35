//! User accounts.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{map_err, SqlStore};
use crate::store::{StoreError, StoreResult, User, UserStore};

pub(super) const COLUMNS: &str = "sub, username, password_hash, email, name, disabled, created_at";

pub(super) fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    let get = |e: sqlx::Error| StoreError::Other(format!("users row: {e}"));
    Ok(User {
        sub: row.try_get("sub").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        email: row.try_get("email").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(get)? != 0,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}

impl SqlStore {
    async fn user_where(&self, column: &str, value: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }
}

/// Inserts a user on `conn` (in a transaction, with what the user comes with).
pub(super) async fn insert_user_on(conn: &mut sqlx::AnyConnection, u: &User) -> StoreResult<()> {
    sqlx::query(&format!("INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
        .bind(&u.sub)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(u.email.clone())
        .bind(u.name.clone())
        .bind(u.disabled as i64)
        .bind(u.created_at)
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_user_on(&mut conn, u).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_where("username", username).await
    }

    async fn user(&self, sub: &str) -> StoreResult<Option<User>> {
        self.user_where("sub", sub).await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_password_hash(&self, username: &str, hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(disabled as i64)
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}
