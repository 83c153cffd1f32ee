//! SQL for the `users` table.

use super::{Store, StoreError};
use crate::names::{TimeZoneName, UserName};
use crate::time::now;
use crate::users::{Language, Role, User, UserId};

/// A user row with its password hash (never leaves the engine).
#[derive(sqlx::FromRow)]
pub(crate) struct UserWithHash {
    #[sqlx(flatten)]
    pub user: User,
    pub password_hash: String,
}

const COLUMNS: &str = "id, name, role, disabled, lang, time_zone, created_at, password_hash";

impl Store {
    /// Inserts a user. Returns `None` when the name is taken.
    pub(crate) async fn insert_user(
        &self,
        name: &UserName,
        password_hash: &str,
        role: Role,
    ) -> Result<Option<User>, StoreError> {
        let at = now().to_string();
        let result = sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(&at)
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        self.user_by_name(name).await
    }

    pub(crate) async fn user_by_name(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        Ok(self
            .user_with_hash_by_name(name)
            .await?
            .map(|found| found.user))
    }

    pub(crate) async fn user_with_hash_by_name(
        &self,
        name: &UserName,
    ) -> Result<Option<UserWithHash>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE name = ?1"))
                .bind(name.as_str())
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub(crate) async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))
                .bind(id.0)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub(crate) async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY name"))
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub(crate) async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?)
    }

    /// Sets the disabled flag. Returns whether a row changed.
    pub(crate) async fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1 AND disabled != ?2",
        )
        .bind(id.0)
        .bind(i64::from(disabled))
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    pub(crate) async fn set_user_role(&self, id: UserId, role: Role) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1 AND role != ?2")
                .bind(id.0)
                .bind(role.as_str())
                .bind(now().to_string())
                .execute(self.pool())
                .await?;
        Ok(result.rows_affected() > 0)
    }

    pub(crate) async fn set_user_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id.0)
            .bind(password_hash)
            .bind(now().to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn set_user_time_zone(
        &self,
        id: UserId,
        zone: Option<&TimeZoneName>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET time_zone = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id.0)
            .bind(zone.map(TimeZoneName::as_str))
            .bind(now().to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(crate) async fn set_user_language(
        &self,
        id: UserId,
        language: Language,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET lang = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id.0)
            .bind(language.as_str())
            .bind(now().to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
