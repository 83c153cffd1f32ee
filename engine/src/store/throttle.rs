//! SQL for login throttling (`login_failures`).

use super::{Store, StoreError};

/// What is throttled: an account name or a source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureScope {
    Account,
    Address,
}

impl FailureScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }
}

impl Store {
    /// Records an attempt as a failure of each of `keys`; returns the rows' ids, which a
    /// successful login forgets again.
    pub(crate) async fn record_login_failure(
        &self,
        keys: &[(FailureScope, String)],
        at_us: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut ids = Vec::new();
        for (scope, key) in keys {
            let done =
                sqlx::query("INSERT INTO login_failures (scope, key, at_us) VALUES (?1, ?2, ?3)")
                    .bind(scope.as_str())
                    .bind(key)
                    .bind(at_us)
                    .execute(&mut *tx)
                    .await?;
            ids.push(done.last_insert_rowid());
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Forgets the rows of an attempt that turned out a success.
    pub(crate) async fn forget_login_attempt(&self, ids: &[i64]) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("DELETE FROM login_failures WHERE rowid = ?1")
                .bind(id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// The times (microseconds, newest first) of the `limit` newest failures of a key since
    /// `since_us`.
    pub(crate) async fn recent_login_failures(
        &self,
        scope: FailureScope,
        key: &str,
        since_us: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT at_us FROM login_failures WHERE scope = ?1 AND key = ?2 AND at_us >= ?3 \
             ORDER BY at_us DESC LIMIT ?4",
        )
        .bind(scope.as_str())
        .bind(key)
        .bind(since_us)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Remembers a browser that signed in as `user` (the digest of its cookie's token); a user
    /// keeps their 10 newest.
    pub(crate) async fn remember_device(
        &self,
        digest: &str,
        user: crate::users::UserId,
        at_us: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT INTO login_devices (digest, user_id, created_us) VALUES (?1, ?2, ?3)")
            .bind(digest)
            .bind(user.0)
            .bind(at_us)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM login_devices WHERE user_id = ?1 AND digest NOT IN \
             (SELECT digest FROM login_devices WHERE user_id = ?1 ORDER BY created_us DESC LIMIT 10)",
        )
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user a remembered browser signed in as, if it was remembered after `since_us`.
    pub(crate) async fn device_user(
        &self,
        digest: &str,
        since_us: i64,
    ) -> Result<Option<crate::users::UserId>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM login_devices WHERE digest = ?1 AND created_us >= ?2",
        )
        .bind(digest)
        .bind(since_us)
        .fetch_optional(self.pool())
        .await?;
        Ok(id.map(crate::users::UserId))
    }

    /// Forgets browsers remembered before `before_us`.
    pub(crate) async fn prune_devices(&self, before_us: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM login_devices WHERE created_us < ?1")
                .bind(before_us)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// A successful login clears the account's failures (not the address's).
    pub(crate) async fn clear_account_failures(&self, account: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE scope = 'account' AND key = ?1")
            .bind(account)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Drops failures older than `before_us`; they no longer count for anything.
    pub(crate) async fn prune_login_failures(&self, before_us: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM login_failures WHERE at_us < ?1")
            .bind(before_us)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
