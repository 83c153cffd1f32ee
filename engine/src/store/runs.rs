//! SQL for workflow runs (`runs`, `run_steps`, `run_objects`) and stored manifests.

use sqlx::Row;

use super::{Store, StoreError, sealer};
use crate::model::{
    ActiveRun, ObjectRow, RunFailure, RunId, RunRow, RunStatus, StepRow, StepStatus,
};
use crate::time::now;
use grappe_views::runs::{Planned, StepProgress};

/// A run to insert, with its steps and planned objects.
pub(crate) struct NewRun<'a> {
    pub cluster: &'a str,
    pub workflow: &'a str,
    pub params: &'a str,
    pub actor: &'a str,
    pub plan: &'a str,
    pub plan_hash: &'a str,
    pub title: &'a str,
    pub manifest_source: Option<&'a str>,
    pub manifest_sha256: Option<&'a str>,
    pub confirmation: &'a str,
    pub steps: &'a [String],
    pub objects: &'a [NewRunObject],
}

/// A planned object of a new run.
pub(crate) struct NewRunObject {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub planned: Planned,
}

/// Output kept per step (the end is kept when longer).
const MAX_OUTPUT: usize = 64 * 1024;

const RUN_COLUMNS: &str = "id, cluster, workflow, params, actor, plan, plan_hash, title, manifest_source, manifest_sha256, \
     confirmation, status, cancel_requested, started_at, finished_at, error, error_code, error_params, \
     digest, warnings";

impl Store {
    /// Stores a manifest's text under its checksum, once.
    pub(crate) async fn put_manifest(
        &self,
        sha256: &str,
        content: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO manifests (sha256, content, size, source, added_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(content)
        .bind(i64::try_from(content.len()).unwrap_or(i64::MAX))
        .bind(source)
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A stored manifest's text and first source.
    pub(crate) async fn get_manifest(
        &self,
        sha256: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT content, source FROM manifests WHERE sha256 = ?1")
            .bind(sha256)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((r.try_get("content")?, r.try_get("source")?)))
            .transpose()
    }

    /// Inserts a running run with its steps and objects, unless the cluster is held by another
    /// run (the unique index decides): then returns that run.
    pub(crate) async fn insert_run(
        &self,
        run: &NewRun<'_>,
    ) -> Result<Result<RunId, ActiveRun>, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query(
            "INSERT INTO runs (cluster, workflow, params, actor, plan, plan_hash, title, manifest_source, \
             manifest_sha256, confirmation, status, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11)",
        )
        .bind(run.cluster)
        .bind(run.workflow)
        .bind(run.params)
        .bind(run.actor)
        .bind(run.plan)
        .bind(run.plan_hash)
        .bind(run.title)
        .bind(run.manifest_source)
        .bind(run.manifest_sha256)
        .bind(run.confirmation)
        .bind(now().to_string())
        .execute(&mut *tx)
        .await;
        let id = match inserted {
            Ok(r) => RunId(r.last_insert_rowid()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                return match self.active_run(run.cluster).await? {
                    Some(active) => Ok(Err(active)),
                    None => Err(StoreError::Corrupt(
                        "unique violation on runs without an active run".into(),
                    )),
                };
            }
            Err(e) => return Err(e.into()),
        };
        for (idx, name) in run.steps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_steps (run_id, idx, name, status) VALUES (?1, ?2, ?3, 'pending')",
            )
            .bind(id.0)
            .bind(i64::try_from(idx).unwrap_or(i64::MAX))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        for (seq, o) in run.objects.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_objects (run_id, seq, api_version, kind, namespace, name, planned) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(id.0)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(&o.api_version)
            .bind(&o.kind)
            .bind(&o.namespace)
            .bind(&o.name)
            .bind(o.planned.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(id))
    }

    /// The run holding a cluster (running or interrupted), if any.
    pub async fn active_run(&self, cluster: &str) -> Result<Option<ActiveRun>, StoreError> {
        let row = sqlx::query_as(
            "SELECT id, actor, workflow, status FROM runs \
             WHERE cluster = ?1 AND status IN ('running', 'interrupted')",
        )
        .bind(cluster)
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    pub async fn run(&self, id: RunId) -> Result<Option<RunRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
                .bind(id.0)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Runs, newest first, optionally of one cluster and/or workflow prefix.
    pub async fn runs(
        &self,
        cluster: Option<&str>,
        workflow_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM runs \
             WHERE (?1 IS NULL OR cluster = ?1) AND (?2 IS NULL OR workflow LIKE ?2 || '%') \
             ORDER BY id DESC LIMIT ?3"
        ))
        .bind(cluster)
        .bind(workflow_prefix)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn run_steps(&self, id: RunId) -> Result<Vec<StepRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT idx, name, status, started_at, finished_at, output, progress_done, \
             progress_total, progress_unit, progress_note, progress_updated, \
             progress_updated_total FROM run_steps \
             WHERE run_id = ?1 ORDER BY idx",
        )
        .bind(id.0)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn run_objects(&self, id: RunId) -> Result<Vec<ObjectRow>, StoreError> {
        let rows: Vec<ObjectRow> = sqlx::query_as(
            "SELECT seq, api_version, kind, namespace, name, planned, snapshot_taken, before, done, done_at \
             FROM run_objects WHERE run_id = ?1 ORDER BY seq",
        )
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|o| ObjectRow {
                // A sealed snapshot this key cannot open stays sealed: its rollback then
                // refuses to read it (it never takes it for "did not exist").
                before: o
                    .before
                    .map(|b| self.sealer.open(id.0, o.seq, &b).unwrap_or(b)),
                ..o
            })
            .collect())
    }

    /// Moves a step to `status`, stamping its start or end.
    pub(crate) async fn set_step_status(
        &self,
        id: RunId,
        idx: i64,
        status: StepStatus,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE run_steps SET status = ?3, \
             started_at = CASE WHEN ?3 = 'running' THEN COALESCE(started_at, ?4) ELSE started_at END, \
             finished_at = CASE WHEN ?3 IN ('done', 'failed', 'cancelled') THEN ?4 \
                                WHEN ?3 = 'running' THEN NULL ELSE finished_at END \
             WHERE run_id = ?1 AND idx = ?2",
        )
            .bind(id.0)
            .bind(idx)
            .bind(status.as_str())
            .bind(now().to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records how far step `idx` is ([`StepProgress`]).
    pub(crate) async fn set_step_progress(
        &self,
        id: RunId,
        idx: i64,
        p: &StepProgress,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE run_steps SET progress_done = ?3, progress_total = ?4, progress_unit = ?5, \
             progress_note = ?6, progress_updated = ?7, progress_updated_total = ?8 \
             WHERE run_id = ?1 AND idx = ?2",
        )
        .bind(id.0)
        .bind(idx)
        .bind(i64::try_from(p.done).unwrap_or(i64::MAX))
        .bind(i64::try_from(p.total).unwrap_or(i64::MAX))
        .bind(p.unit.as_str())
        .bind(p.note.as_deref())
        .bind(p.updated.map(|t| i64::try_from(t.done).unwrap_or(i64::MAX)))
        .bind(
            p.updated
                .map(|t| i64::try_from(t.total).unwrap_or(i64::MAX)),
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Appends a line to a step's output (the last 64 KiB are kept).
    pub(crate) async fn append_step_output(
        &self,
        id: RunId,
        idx: i64,
        line: &str,
    ) -> Result<(), StoreError> {
        let mut text = line.to_owned();
        text.push('\n');
        sqlx::query(
            "UPDATE run_steps SET output = substr(output || ?3, -?4) WHERE run_id = ?1 AND idx = ?2",
        )
        .bind(id.0)
        .bind(idx)
        .bind(text)
        .bind(i64::try_from(MAX_OUTPUT).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records an object's snapshot (`None`: it did not exist), once.
    pub(crate) async fn set_object_snapshot(
        &self,
        id: RunId,
        seq: i64,
        before: Option<&str>,
    ) -> Result<(), StoreError> {
        let before = before.map(|b| {
            if sealer::is_secret(b) {
                self.sealer.seal(id.0, seq, b)
            } else {
                b.to_owned()
            }
        });
        sqlx::query(
            "UPDATE run_objects SET snapshot_taken = 1, before = ?3 \
             WHERE run_id = ?1 AND seq = ?2 AND snapshot_taken = 0",
        )
        .bind(id.0)
        .bind(seq)
        .bind(before)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(crate) async fn set_object_done(
        &self,
        id: RunId,
        seq: i64,
        done: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE run_objects SET done = ?3, done_at = ?4 WHERE run_id = ?1 AND seq = ?2",
        )
        .bind(id.0)
        .bind(seq)
        .bind(done)
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends a run (only a running one).
    pub(crate) async fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        failure: Option<&RunFailure>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE runs SET status = ?2, error = ?3, error_code = ?4, error_params = ?5, finished_at = ?6 \
             WHERE id = ?1 AND status = 'running'",
        )
        .bind(id.0)
        .bind(status.as_str())
        .bind(failure.map(|f| f.text.as_str()))
        .bind(failure.and_then(|f| f.code.as_ref().map(|(c, _)| *c)))
        .bind(failure.and_then(RunFailure::params_json))
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Adds a warning to a run.
    pub(crate) async fn add_run_warning(&self, id: RunId, warning: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET warnings = json_insert(warnings, '$[#]', ?2) WHERE id = ?1")
            .bind(id.0)
            .bind(warning)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a second admin's approval of a run (idempotent).
    pub(crate) async fn approve_run(&self, id: RunId, actor: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO run_approvals (run_id, actor, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(actor)
        .bind(now().to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Who approved a run.
    pub(crate) async fn run_approvals(&self, id: RunId) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT actor FROM run_approvals WHERE run_id = ?1 ORDER BY at")
                .bind(id.0)
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub(crate) async fn set_run_digest(&self, id: RunId, digest: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET digest = ?2 WHERE id = ?1")
            .bind(id.0)
            .bind(digest)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Moves a run from one status to another; false when it was not in `from`.
    pub(crate) async fn transition_run(
        &self,
        id: RunId,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<bool, StoreError> {
        let finished = matches!(to, RunStatus::Abandoned).then(|| now().to_string());
        let r = sqlx::query(
            "UPDATE runs SET status = ?3, finished_at = COALESCE(?4, finished_at), cancel_requested = 0 \
             WHERE id = ?1 AND status = ?2",
        )
        .bind(id.0)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(finished)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Finished runs without their digest: their process stopped between their end and their
    /// seal.
    pub(crate) async fn unsealed_finished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled', 'abandoned') \
             AND digest IS NULL ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(RunId).collect())
    }

    /// At startup: every run left running has nothing executing it any more.
    pub(crate) async fn interrupt_running_runs(&self) -> Result<Vec<RunId>, StoreError> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM runs WHERE status = 'running'")
            .fetch_all(&mut *tx)
            .await?;
        for id in &ids {
            sqlx::query("UPDATE runs SET status = 'interrupted' WHERE id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE run_steps SET status = 'interrupted' WHERE run_id = ?1 AND status = 'running'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ids.into_iter().map(RunId).collect())
    }

    pub(crate) async fn request_cancel(&self, id: RunId) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE runs SET cancel_requested = 1 WHERE id = ?1 AND status = 'running'",
        )
        .bind(id.0)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
