//! SQL for SSH host keys (`ssh_host_keys`), host checks (`host_checks`) and the control-plane
//! nodes remembered per cluster (`known_control_planes`).

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

    /// The newest check of each node of `cluster` (JSON results).
    pub(crate) async fn latest_host_checks(
        &self,
        cluster: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT result FROM host_checks WHERE id IN \
             (SELECT MAX(id) FROM host_checks WHERE cluster = ?1 GROUP BY node)",
        )
        .bind(cluster)
        .fetch_all(self.pool())
        .await?)
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

impl Store {
    /// Replaces the control-plane nodes remembered for `cluster` (name, InternalIP).
    pub(crate) async fn remember_control_planes(
        &self,
        cluster: &str,
        nodes: &[(String, Option<String>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM known_control_planes WHERE cluster = ?1")
            .bind(cluster)
            .execute(&mut *tx)
            .await?;
        let at = now().to_string();
        for (node, ip) in nodes {
            sqlx::query(
                "INSERT INTO known_control_planes (cluster, node, internal_ip, seen_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(cluster)
            .bind(node)
            .bind(ip)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The control-plane nodes remembered for `cluster`.
    pub(crate) async fn known_control_planes(
        &self,
        cluster: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT node, internal_ip FROM known_control_planes WHERE cluster = ?1 ORDER BY node",
        )
        .bind(cluster)
        .fetch_all(self.pool())
        .await?)
    }
}
