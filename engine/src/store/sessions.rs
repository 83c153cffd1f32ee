//! SQL for the link between sessions and users (`user_sessions`) and for ending sessions in the
//! tower-sessions table (`sessions`).

use super::{Store, StoreError};
use crate::time::now;
use crate::users::UserId;

impl Store {
    /// Records that `session_id` belongs to `user`.
    pub(crate) async fn link_session(
        &self,
        session_id: &str,
        user: UserId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_sessions (session_id, user_id, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id",
        )
        .bind(session_id)
        .bind(user.0)
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the session `session_id` exists, has not expired, and belongs to `user`, who is
    /// not disabled.
    pub(crate) async fn session_alive(
        &self,
        session_id: &str,
        user: UserId,
    ) -> Result<bool, StoreError> {
        let alive: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions s \
             JOIN user_sessions l ON l.session_id = s.id \
             JOIN users u ON u.id = l.user_id \
             WHERE s.id = ?1 AND s.expiry_date > unixepoch() AND u.id = ?2 AND u.disabled = 0",
        )
        .bind(session_id)
        .bind(user.0)
        .fetch_one(self.pool())
        .await?;
        Ok(alive > 0)
    }

    /// Forgets one session (logout).
    pub(crate) async fn unlink_session(&self, session_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM sessions WHERE id = ?1")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_sessions WHERE session_id = ?1")
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes every session of `user`. Returns how many were ended.
    pub(crate) async fn end_sessions_of(&self, user: UserId) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let ended = sqlx::query(
            "DELETE FROM sessions WHERE id IN (SELECT session_id FROM user_sessions WHERE user_id = ?1)",
        )
        .bind(user.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM user_sessions WHERE user_id = ?1")
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Removes expired sessions and their links. Returns how many sessions were removed.
    pub(crate) async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let removed = sqlx::query("DELETE FROM sessions WHERE expiry_date < unixepoch()")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM user_sessions WHERE session_id NOT IN (SELECT id FROM sessions)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(removed)
    }
}
