//! SQL for SSH host keys (`ssh_host_keys`) and host checks (`host_checks`).

use super::{Store, StoreError};
use crate::time::now;

impl Store {
    /// The pinned host key of a node (OpenSSH one-line form), if any.
    pub(crate) async fn host_key(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT key FROM ssh_host_keys WHERE cluster = ?1 AND node = ?2")
                .bind(cluster)
                .bind(node)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Pins (or replaces) a node's host key.
    pub(crate) async fn pin_host_key(
        &self,
        cluster: &str,
        node: &str,
        address: &str,
        key: &str,
        fingerprint: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ssh_host_keys (cluster, node, address, key, fingerprint, trusted_by, trusted_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (cluster, node) DO UPDATE SET address = excluded.address, key = excluded.key, \
             fingerprint = excluded.fingerprint, trusted_by = excluded.trusted_by, trusted_at = excluded.trusted_at",
        )
        .bind(cluster)
        .bind(node)
        .bind(address)
        .bind(key)
        .bind(fingerprint)
        .bind(actor)
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores a host check's result (JSON); returns its id.
    pub(crate) async fn insert_host_check(
        &self,
        cluster: &str,
        node: &str,
        actor: &str,
        at: &str,
        result: &str,
    ) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO host_checks (cluster, node, actor, at, result) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(cluster)
        .bind(node)
        .bind(actor)
        .bind(at)
        .bind(result)
        .execute(self.pool())
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// The newest checks of a node (JSON results with their ids), newest first.
    pub(crate) async fn host_checks(
        &self,
        cluster: &str,
        node: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, result FROM host_checks WHERE cluster = ?1 AND node = ?2 ORDER BY id DESC LIMIT ?3",
        )
        .bind(cluster)
        .bind(node)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
