//! Runs as the pages and exports read them: the history list, one run with its steps and
//! objects, and the CSV export.

use grappe_views::runs::{
    ActiveRunView, ProgressUnit, RunObjectView, RunSummaryView, RunView, StepProgress, StepView,
    Tally,
};

use super::{RunError, RunId, Runs};
use crate::model::{ObjectRow, RunRow, RunStatus, StepRow};
use crate::store::StoreError;

impl Runs {
    /// Runs, newest first.
    ///
    /// # Errors
    /// [`RunError::Store`].
    pub async fn list(
        &self,
        cluster: Option<&str>,
        workflow_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunSummaryView>, RunError> {
        let rows = self
            .inner
            .store
            .runs(cluster, workflow_prefix, limit)
            .await?;
        Ok(rows.iter().map(summary).collect())
    }

    /// The cluster's run in progress (running or interrupted: one at most), where it is.
    ///
    /// # Errors
    /// [`RunError::Store`].
    pub async fn active(&self, cluster: &str) -> Result<Option<ActiveRunView>, RunError> {
        let Some(active) = self.inner.store.active_run(cluster).await? else {
            return Ok(None);
        };
        let run = self.load(active.id).await?;
        let steps = self.inner.store.run_steps(active.id).await?;
        Ok(Some(ActiveRunView::new(
            summary(&run),
            steps.iter().map(step_view).collect(),
        )))
    }

    /// Everything recorded about one run.
    ///
    /// # Errors
    /// [`RunError::UnknownRun`], [`RunError::Store`].
    pub async fn view(&self, id: RunId) -> Result<RunView, RunError> {
        let run = self.load(id).await?;
        let steps = self.inner.store.run_steps(id).await?;
        let objects = self.inner.store.run_objects(id).await?;
        let plan = crate::model::Plan::stored(&run.plan)
            .map_err(|e| StoreError::Corrupt(format!("plan of run {id}: {e}")))?
            .view();
        let finished = !matches!(run.status, RunStatus::Running | RunStatus::Interrupted);
        Ok(RunView {
            summary: summary(&run),
            plan,
            confirmation: run.confirmation.clone(),
            steps: steps.iter().map(step_view).collect(),
            objects: objects.iter().map(object_view).collect(),
            cancel_requested: run.cancel_requested,
            can_roll_back: finished
                && self.inner.registry.policy(run.workflow).roll_back
                && objects.iter().any(|o| o.done.is_some()),
            digest: run.digest.clone(),
            may: Default::default(),
        })
    }
}

/// Writes runs as CSV (one line per run, the history's columns).
///
/// # Errors
/// [`csv::Error`] when writing fails.
pub fn write_csv<W: std::io::Write>(runs: &[RunSummaryView], out: W) -> Result<(), csv::Error> {
    let header = [
        "id",
        "cluster",
        "workflow",
        "title",
        "actor",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "manifest_source",
        "manifest_sha256",
        "error",
    ];
    let rows = runs.iter().map(|r| {
        [
            r.id.to_string(),
            r.cluster.clone(),
            r.workflow.to_string(),
            r.title.clone(),
            r.actor.clone(),
            r.status.to_string(),
            r.started_at.clone(),
            r.finished_at.clone().unwrap_or_default(),
            r.duration_seconds
                .map(|d| d.to_string())
                .unwrap_or_default(),
            r.manifest_source.clone().unwrap_or_default(),
            r.manifest_sha256.clone().unwrap_or_default(),
            r.error.clone().unwrap_or_default(),
        ]
    });
    crate::csv_export::write(out, &header, rows)
}

fn summary(run: &RunRow) -> RunSummaryView {
    let duration = run.finished_at.as_deref().and_then(|f| {
        let f = crate::time::Timestamp::parse(f).ok()?;
        let s = crate::time::Timestamp::parse(&run.started_at).ok()?;
        Some(f.unix_seconds() - s.unix_seconds())
    });
    RunSummaryView {
        id: run.id.0,
        cluster: run.cluster.to_string(),
        workflow: run.workflow,
        title: run.title.clone(),
        actor: run.actor.clone(),
        status: run.status,
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        duration_seconds: duration,
        manifest_source: run.manifest_source.clone(),
        manifest_sha256: run.manifest_sha256.clone(),
        error: run.error.clone(),
        error_code: run.error_code.clone(),
        error_params: run
            .error_params
            .as_deref()
            .and_then(|p| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(p).ok()
            })
            .map(|map| {
                map.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        warnings: run.warnings.clone(),
    }
}

fn step_view(s: &StepRow) -> StepView {
    StepView {
        name: s.name.clone(),
        status: s.status,
        started_at: s.started_at.clone(),
        finished_at: s.finished_at.clone(),
        output: s.output.clone(),
        progress: match (s.progress_done, s.progress_total) {
            (Some(done), Some(total)) => Some(StepProgress {
                done: u64::try_from(done).unwrap_or(0),
                total: u64::try_from(total).unwrap_or(0),
                unit: s
                    .progress_unit
                    .as_deref()
                    .and_then(ProgressUnit::from_str)
                    .unwrap_or_default(),
                note: s.progress_note.clone(),
                updated: match (s.progress_updated, s.progress_updated_total) {
                    (Some(done), Some(total)) => Some(Tally {
                        done: u64::try_from(done).unwrap_or(0),
                        total: u64::try_from(total).unwrap_or(0),
                    }),
                    _ => None,
                },
            }),
            _ => None,
        },
    }
}

fn object_view(o: &ObjectRow) -> RunObjectView {
    RunObjectView {
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        planned: o.planned,
        existed: o.snapshot_taken.then_some(o.before.is_some()),
        done: o.done.clone(),
    }
}
