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

/// Failures of one key inside a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FailureCount {
    pub count: i64,
    /// Microseconds since the Unix epoch of the newest failure.
    pub last_us: Option<i64>,
}

impl Store {
    /// Records an attempt as a failure of the account and of the address; returns the rows'
    /// ids, which a successful login forgets again.
    pub(crate) async fn record_login_failure(
        &self,
        account: &str,
        address: &str,
        at_us: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut ids = Vec::new();
        for (scope, key) in [
            (FailureScope::Account, account),
            (FailureScope::Address, address),
        ] {
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

    pub(crate) async fn count_login_failures(
        &self,
        scope: FailureScope,
        key: &str,
        since_us: i64,
    ) -> Result<FailureCount, StoreError> {
        let (count, last_us): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MAX(at_us) FROM login_failures \
             WHERE scope = ?1 AND key = ?2 AND at_us >= ?3",
        )
        .bind(scope.as_str())
        .bind(key)
        .bind(since_us)
        .fetch_one(self.pool())
        .await?;
        Ok(FailureCount { count, last_us })
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
