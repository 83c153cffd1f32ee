//! SQL for the IP pools' use over time (`ipam_samples`): what the exhaustion forecast reads.

use super::{Store, StoreError};

/// One pool's use at one time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IpamSample {
    pub pool: String,
    pub at: i64,
    pub allocated: i64,
    pub size: i64,
}

impl Store {
    /// Records the pools of `cluster` at `at` (a sample already there for that second is kept).
    pub(crate) async fn insert_ipam_samples(
        &self,
        cluster: &str,
        at: i64,
        pools: &[(String, u64, u64)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for (pool, allocated, size) in pools {
            sqlx::query(
                "INSERT OR IGNORE INTO ipam_samples (cluster, pool, at, allocated, size) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(cluster)
            .bind(pool)
            .bind(at)
            .bind(i64::try_from(*allocated).unwrap_or(i64::MAX))
            .bind(i64::try_from(*size).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The samples of `cluster` since `since`, oldest first.
    pub(crate) async fn ipam_samples(
        &self,
        cluster: &str,
        since: i64,
    ) -> Result<Vec<IpamSample>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pool, at, allocated, size FROM ipam_samples \
             WHERE cluster = ?1 AND at >= ?2 ORDER BY at",
        )
        .bind(cluster)
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes the samples older than `before`; returns how many.
    pub(crate) async fn prune_ipam_samples(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM ipam_samples WHERE at < ?1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::trend::{KEEP_FOR, trends};
    use grappe_views::ipam::Trend;

    #[tokio::test]
    async fn samples_are_kept_per_pool_pruned_by_age_and_read_as_trends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("grappe.db"))
            .await
            .expect("open");
        let day = 86_400;
        let keep = i64::try_from(KEEP_FOR.as_secs()).expect("seconds");
        // 100 days of a pool growing by 10 a day, and a flat one.
        for d in 0..100 {
            let at = 1_800_000_000 + d * day;
            let pools = [
                (
                    "default-ipv4-ippool".to_owned(),
                    100 + 10 * d as u64,
                    65_536,
                ),
                ("small".to_owned(), 29, 32),
            ];
            store
                .insert_ipam_samples("lab", at, &pools)
                .await
                .expect("insert");
        }
        // The same second twice: kept once.
        store
            .insert_ipam_samples("lab", 1_800_000_000, &[("small".into(), 1, 32)])
            .await
            .expect("insert again");
        let now = 1_800_000_000 + 99 * day;
        let pruned = store.prune_ipam_samples(now - keep).await.expect("prune");
        assert_eq!(
            pruned,
            2 * 9,
            "the first 9 days of both pools are past 90 days"
        );
        let week = store
            .ipam_samples("lab", now - 7 * day)
            .await
            .expect("read");
        assert_eq!(week.len(), 2 * 8);
        assert!(
            store
                .ipam_samples("other", 0)
                .await
                .expect("read")
                .is_empty()
        );
        let t = trends(week);
        assert_eq!(t.len(), 2);
        // 1090 allocated, 10 a day, 65,536 addresses: 6,445 days.
        assert_eq!(t[0].pool, "default-ipv4-ippool");
        assert_eq!(t[0].trend, Trend::FullIn { days: 6_445 });
        assert_eq!(t[1].trend, Trend::NotGrowing);
        assert_eq!(t[1].points.len(), 8);
        store.close().await;
    }
}
