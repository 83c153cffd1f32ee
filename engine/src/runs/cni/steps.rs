//! The executor of the CNI workflows: its context, the snapshot, the apply per phase and the
//! wait for CRDs; the rollout and the undo steps are beside it.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use super::*;
use crate::manifests::parse::Phase;
use crate::manifests::{self};
use crate::model::{ObjectRow, RunRow};
use crate::runs::k8s::{self, KubeError, Resolver};
use crate::runs::registry::Executor;
use crate::runs::step::{Next, StepCx, Wait};
use crate::runs::{Failure, RunError, RunId, Runs, Workflow};
use futures::future::BoxFuture;

/// What a step needs: the run, its objects, the cluster.
pub(crate) struct StepContext {
    pub(super) cx: StepCx,
    /// Which CNI workflow the steps are of (a recovery's rollback steps are a rollback's).
    pub(super) workflow: Workflow,
    pub(super) resolver: Resolver,
    /// This run's object rows (seq order).
    pub(super) rows: Vec<ObjectRow>,
    /// For installs: the manifest objects by row (same order as the plan).
    pub(super) desired: Vec<Option<Value>>,
    /// For rollbacks: the target run's snapshots by row (`None`: it did not exist).
    pub(super) target_before: Vec<Option<Value>>,
    pub(super) rollout_timeout: Duration,
}

impl StepContext {
    /// The executor of a CNI run, as its workflow id and parameters say.
    pub(crate) async fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let params: Value = crate::runs::run_params(run)?;
        let workflow = run.workflow;
        let mut ctx = Self::new(runs, run, workflow, cancel).await?;
        if let Some(t) = params.get("timeout_seconds").and_then(Value::as_u64) {
            ctx.rollout_timeout = Duration::from_secs(t);
        }
        match workflow {
            Workflow::CniInstall | Workflow::CniMigrate => {
                let p: InstallParams = serde_json::from_value(params)
                    .map_err(|e| RunError::Corrupt(format!("parameters: {e}")))?;
                let manifest = manifests::load(&runs.inner().store, &p.manifest_sha256).await?;
                let objects = install_objects(&manifest, &p)?;
                for (i, row) in ctx.rows.iter().enumerate() {
                    ctx.desired[i] = objects
                        .iter()
                        .find(|o| object_ref(o) == row_ref(row))
                        .map(|o| o.value.clone());
                }
            }
            Workflow::CniRollback => {
                let target = params
                    .get("run")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| RunError::Corrupt("parameters: no run".into()))?;
                ctx.target_before = ctx.snapshots_of(RunId(target)).await?;
            }
            _ => {}
        }
        Ok(ctx)
    }

    /// The rollback of run `target` as steps of `run`, another workflow's run (a recovery
    /// ends with the rollback of the install that broke the API server): the same steps on
    /// `run`'s object rows, which its plan took from `target`'s.
    pub(crate) async fn rollback_of(
        runs: &Runs,
        run: &RunRow,
        target: RunId,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let mut ctx = Self::new(runs, run, Workflow::CniRollback, cancel).await?;
        ctx.target_before = ctx.snapshots_of(target).await?;
        Ok(ctx)
    }

    pub(super) async fn new(
        runs: &Runs,
        run: &RunRow,
        workflow: Workflow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let client = runs.client_of(&run.cluster).await?;
        let rows = runs.inner().store.run_objects(run.id).await?;
        Ok(Self {
            cx: StepCx::new(runs, run, cancel),
            workflow,
            resolver: Resolver::new(client),
            desired: vec![None; rows.len()],
            target_before: vec![None; rows.len()],
            rows,
            rollout_timeout: super::ROLLOUT_TIMEOUT,
        })
    }

    /// `target`'s snapshots by this run's rows (`None`: the object did not exist before it).
    pub(super) async fn snapshots_of(&self, target: RunId) -> Result<Vec<Option<Value>>, RunError> {
        let theirs = self.cx.runs.inner().store.run_objects(target).await?;
        self.rows
            .iter()
            .map(|row| {
                theirs
                    .iter()
                    .find(|o| row_ref(o) == row_ref(row))
                    .and_then(|o| o.before.as_deref())
                    .map(|text| {
                        serde_json::from_str(text).map_err(|e| {
                            RunError::from(Failure::snapshot(row_ref(row).key(), text, &e))
                        })
                    })
                    .transpose()
            })
            .collect()
    }

    pub(super) async fn done(&self, seq: i64, what: &str) -> Result<(), RunError> {
        self.cx
            .runs
            .inner()
            .store
            .set_object_done(self.cx.run.id, seq, what)
            .await?;
        Ok(())
    }

    pub(crate) async fn step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
        let workflow = self.workflow;
        // Rows are reloaded: a resumed step sees what the previous attempt recorded.
        self.rows = self
            .cx
            .runs
            .inner()
            .store
            .run_objects(self.cx.run.id)
            .await?;
        match (workflow, name) {
            (_, "snapshot") => self.snapshot(idx).await,
            (Workflow::CniInstall | Workflow::CniMigrate, "wait crds established") => {
                self.wait_crds(idx).await
            }
            (Workflow::CniInstall | Workflow::CniMigrate, "rollout") => self.rollout(idx).await,
            (Workflow::CniMigrate, "migrate nodes") => self.migrate_nodes(idx).await,
            (Workflow::CniRollback, "unlabel nodes") => self.unlabel_nodes(idx).await,
            (Workflow::IpamRelease, "release") => self.release_leaks(idx).await,
            (Workflow::IpamRelease, "verify") => self.verify_release(idx).await,
            (Workflow::CniInstall | Workflow::CniMigrate, step) if step.starts_with("apply ") => {
                let phase = Phase::ALL
                    .into_iter()
                    .find(|p| step == format!("apply {}", p.as_str()));
                match phase {
                    Some(p) => self.apply_phase(idx, p).await,
                    None => Err(RunError::Corrupt(format!("unknown step {step}"))),
                }
            }
            (Workflow::CniRollback, "restore") => self.restore(idx).await,
            (_, "delete") => self.delete(idx).await,
            (Workflow::CniRollback, "rollout") => self.rollout(idx).await,
            (Workflow::CniRollback, "verify") => self.verify(idx).await,
            (_, step) => Err(RunError::Corrupt(format!("unknown step {step}"))),
        }
    }

    /// Records each object as it is before the run touches it (once: a resumed run keeps the
    /// first snapshot).
    pub(super) async fn snapshot(&mut self, idx: i64) -> Result<(), RunError> {
        let mut existing = 0;
        let mut todo = Vec::new();
        for row in self.rows.clone() {
            if row.snapshot_taken {
                existing += usize::from(row.before.is_some());
                continue;
            }
            let r = row_ref(&row);
            let api = match self.resolver.api(&r).await {
                Ok(api) => Some(api),
                Err(KubeError::UnknownKind { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            todo.push((row.seq, r, api));
        }
        // A few GETs at a time; each result recorded in the manifest's order.
        let mut gets = futures::stream::iter(todo)
            .map(|(seq, r, api)| async move {
                let current = match api {
                    Some(api) => k8s::get(&api, &r).await,
                    None => Ok(None),
                };
                (seq, current)
            })
            .buffered(CONCURRENCY);
        while let Some((seq, current)) = gets.next().await {
            let text = current?.as_ref().map(Value::to_string);
            existing += usize::from(text.is_some());
            self.cx
                .runs
                .inner()
                .store
                .set_object_snapshot(self.cx.run.id, seq, text.as_deref())
                .await?;
        }
        drop(gets);
        // What a migration leaves to the operator counts as touched from now on: the operator
        // may change it at any moment once its Installation is applied, and a rollback puts it
        // back from this snapshot.
        for row in &self.rows {
            if row.done.is_none() && left_to_operator(row.planned) {
                self.done(row.seq, "left to the operator").await?;
            }
        }
        self.cx
            .say(
                idx,
                &format!(
                    "{} objects recorded, {existing} existed before the run",
                    self.rows.len()
                ),
            )
            .await
    }

    /// Applies the phase's objects, a few at a time (objects of one phase do not depend on
    /// each other; phases go in order). Every applied object is recorded, even when another
    /// of its batch failed; then the first failure ends the step.
    pub(super) async fn apply_phase(&mut self, idx: i64, phase: Phase) -> Result<(), RunError> {
        let mut todo = Vec::new();
        for (i, row) in self.rows.clone().iter().enumerate() {
            if Phase::of(&row.kind) != phase || left_to_operator(row.planned) {
                continue;
            }
            let Some(value) = self.desired[i].clone() else {
                return Err(Failure::NotInManifest {
                    object: row_ref(row).key(),
                }
                .into());
            };
            let r = row_ref(row);
            let api = self.resolver.api(&r).await?;
            todo.push((row.seq, r, api, value));
        }
        for batch in todo.chunks(CONCURRENCY) {
            if self.cx.cancelled() {
                return Err(KubeError::Cancelled.into());
            }
            let applies = batch
                .iter()
                .map(|(_, r, api, value)| k8s::apply(api, r, value, false));
            let results = futures::future::join_all(applies).await;
            let mut failure = None;
            for ((seq, r, _, _), result) in batch.iter().zip(results) {
                match result {
                    Ok(_) => {
                        self.done(*seq, "applied").await?;
                        self.cx.say(idx, &format!("applied {}", r.key())).await?;
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        Ok(())
    }

    pub(super) async fn wait_crds(&mut self, idx: i64) -> Result<(), RunError> {
        let wait = Wait::new("CRDs", Duration::from_millis(250)).timeout(CRDS_TIMEOUT);
        let mut waiter = self.cx.waiter(idx, wait);
        for row in self.rows.clone() {
            if row.kind != "CustomResourceDefinition" {
                continue;
            }
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            loop {
                let established = k8s::get(&api, &r).await?.is_some_and(|crd| {
                    crd.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|c| {
                            c.iter()
                                .any(|c| c["type"] == "Established" && c["status"] == "True")
                        })
                });
                if established {
                    break;
                }
                let line = format!("{} not Established", r.name);
                if let Next::TimedOut(line) = waiter.not_yet(line).await? {
                    let secs = CRDS_TIMEOUT.as_secs();
                    return Err(Failure::CrdsNotEstablished {
                        what: line,
                        seconds: secs,
                    }
                    .into());
                }
            }
        }
        self.resolver.forget();
        self.cx.say(idx, "every CRD is Established").await
    }
}

/// Whether a row is the operator's to change (a migration's `move` and `handover`), not
/// Grappe's to apply.
pub(super) fn left_to_operator(planned: grappe_views::runs::Planned) -> bool {
    use grappe_views::runs::Planned;
    matches!(planned, Planned::Move | Planned::Handover)
}

impl Executor for StepContext {
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(self.step(idx, name))
    }
}
