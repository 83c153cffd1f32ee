//! SQL for the audit log (`audit_log`). The hash chain itself is computed in
//! [`crate::audit`]; this module only reads and writes rows.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{Store, StoreError};
use crate::model::audit::{AuditFilter, AuditRecord};

const COLUMNS: &str = "id, at, actor, source, user_agent, action, cluster, node, object, details, \
                       outcome, prev_hash, hash";

/// The newest link of the chain, read inside the writer's transaction.
pub(crate) struct ChainHead {
    /// The id the next record gets (from sqlite_sequence, so deleted tail rows are not reused).
    pub next_id: i64,
    /// The hash of the newest record, if any.
    pub last_hash: Option<String>,
}

fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &AuditFilter) {
    qb.push(" WHERE 1 = 1");
    if let Some(actor) = &filter.actor {
        qb.push(" AND actor = ").push_bind(actor.clone());
    }
    if let Some(action) = &filter.action {
        qb.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(cluster) = &filter.cluster {
        qb.push(" AND cluster = ").push_bind(cluster.clone());
    }
    if let Some(from) = &filter.from {
        qb.push(" AND at >= ").push_bind(from.to_string());
    }
    if let Some(to) = &filter.to {
        qb.push(" AND at < ").push_bind(to.to_string());
    }
}

impl Store {
    /// Reads the chain head. Call inside the writer's `BEGIN IMMEDIATE` transaction.
    pub(crate) async fn audit_chain_head(
        conn: &mut SqliteConnection,
    ) -> Result<ChainHead, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'")
                .fetch_optional(&mut *conn)
                .await?;
        let max_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit_log")
            .fetch_one(&mut *conn)
            .await?;
        let last_hash: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?;
        let next_id = seq.unwrap_or(0).max(max_id.unwrap_or(0)) + 1;
        Ok(ChainHead { next_id, last_hash })
    }

    /// Inserts a fully computed record. Call inside the writer's transaction.
    pub(crate) async fn insert_audit_record(
        conn: &mut SqliteConnection,
        record: &AuditRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, source, user_agent, action, cluster, node, \
             object, details, outcome, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .bind(record.id.0)
        .bind(&record.at_raw)
        .bind(&record.actor)
        .bind(&record.source)
        .bind(&record.user_agent)
        .bind(&record.action)
        .bind(&record.cluster)
        .bind(&record.node)
        .bind(&record.object)
        .bind(&record.details)
        .bind(record.outcome.as_str())
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Records with `id > after`, oldest first, at most `limit` (the verifier's walk).
    pub(crate) async fn audit_records_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The details of the latest record of `action` about `object` (e.g. a run's seal).
    pub(crate) async fn audit_details_for(
        &self,
        action: &str,
        object: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT details FROM audit_log WHERE action = ?1 AND object = ?2 ORDER BY id DESC LIMIT 1",
        )
        .bind(action)
        .bind(object)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Who made `user` an admin and when (`actor`, `at` as stored): their successful creation
    /// and their role changes to admin, oldest first.
    pub(crate) async fn admin_grants(
        &self,
        user: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT actor, at FROM audit_log WHERE object = ?1 AND outcome = 'success' AND \
             (action = 'user.add' OR (action = 'user.role_change' AND json_extract(details, '$.to') = 'admin')) \
             ORDER BY id",
        )
        .bind(format!("user/{user}"))
        .fetch_all(self.pool())
        .await?)
    }

    /// The highest id ever handed out (sqlite_sequence), to notice deleted tail records.
    pub(crate) async fn audit_sequence(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'")
                .fetch_optional(self.pool())
                .await?;
        Ok(seq.unwrap_or(0))
    }

    /// One page of records matching `filter`, newest first, and the total count.
    pub(crate) async fn audit_page(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditRecord>, i64), StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM audit_log");
        push_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;

        let mut select = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM audit_log"));
        push_filter(&mut select, filter);
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let records = select.build_query_as().fetch_all(self.pool()).await?;
        Ok((records, total))
    }

    /// The distinct values present in a column, for filter menus.
    pub(crate) async fn audit_distinct(
        &self,
        column: AuditColumn,
    ) -> Result<Vec<String>, StoreError> {
        let column = match column {
            AuditColumn::Actor => "actor",
            AuditColumn::Action => "action",
            AuditColumn::Cluster => "cluster",
        };
        // Only what someone did (a success, an attempted action): failed and refused logins carry
        // the name an anonymous client typed, which must not flood the menu. The most recent
        // FILTER_VALUES, in alphabetical order.
        let mut values: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT {column} FROM audit_log WHERE {column} IS NOT NULL \
             AND outcome IN ('success', 'attempted') \
             GROUP BY {column} ORDER BY MAX(id) DESC LIMIT {FILTER_VALUES}"
        ))
        .fetch_all(self.pool())
        .await?;
        values.sort();
        Ok(values)
    }
}

/// At most this many values are offered per filter.
pub const FILTER_VALUES: usize = 200;

/// Columns offered as filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditColumn {
    Actor,
    Action,
    Cluster,
}
