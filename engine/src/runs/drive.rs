//! The task that drives a run: its unfinished steps in order through the workflow's executor,
//! each audited before it starts, the Lease renewed while it runs, then its end recorded and
//! sealed.

use std::time::Duration;

use tokio::sync::watch;

use super::lifecycle::run_target;
use super::registry::{Executor, Load};
use super::{RunError, RunId, RunStatus, Runs, StepStatus, k8s, lease};
use crate::audit::{Action, AuditEntry, Caller, GuardedError, Outcome, error_chain};
use crate::faults;
use crate::model::{RunFailure, RunRow, StepRow};

impl Runs {
    /// Executes the run's unfinished steps in order, then ends it.
    pub(super) async fn drive(&self, id: RunId, caller: &Caller, cancel: watch::Receiver<bool>) {
        let outcome = self.drive_steps(id, caller, &cancel).await;
        let (status, failure) = match outcome {
            Ok(()) => (RunStatus::Succeeded, None),
            Err(RunError::Kube(k8s::KubeError::Cancelled)) => (RunStatus::Cancelled, None),
            Err(e) => {
                tracing::warn!(run = id.0, error = %error_chain(&e), "run failed");
                (RunStatus::Failed, Some(e.failure()))
            }
        };
        self.record_end(id, status, failure.as_ref()).await;
        faults::point(&["finished"]).await;
        if let Ok(Some(run)) = self.inner.store.run(id).await
            && let Ok(client) = self.inner.clusters.client(&run.cluster).await
            && let Err(e) = lease::release(&client, &self.holder(id, &run.actor)).await
        {
            tracing::warn!(run = id.0, error = %error_chain(&e), "could not release the lease");
        }
        self.seal(id, caller).await;
    }

    /// Records the end of a run, again and again while the database refuses it (a full disk):
    /// a run whose end is not recorded would show as running with nothing running it.
    async fn record_end(&self, id: RunId, status: RunStatus, failure: Option<&RunFailure>) {
        let mut wait = Duration::from_secs(1);
        while let Err(e) = self.inner.store.finish_run(id, status, failure).await {
            tracing::error!(run = id.0, error = %error_chain(&e), retry_in = ?wait, "could not record the end of a run");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    async fn drive_steps(
        &self,
        id: RunId,
        caller: &Caller,
        cancel: &watch::Receiver<bool>,
    ) -> Result<(), RunError> {
        let run = self.load(id).await?;
        let kind = self
            .inner
            .registry
            .kind(run.workflow)
            .ok_or(RunError::UnknownWorkflow(run.workflow))?;
        let load = Load {
            runs: self,
            run: &run,
            cancel: cancel.clone(),
        };
        let mut executor = kind.executor(load).await?;
        let renewer = kind
            .policy()
            .lease
            .then(|| self.renew_lease_while_running(id, &run));
        let result = async {
            for step in self.inner.store.run_steps(id).await? {
                if step.status != StepStatus::Done {
                    self.run_one(&run, caller, executor.as_mut(), &step, cancel)
                        .await?;
                }
            }
            Ok(())
        }
        .await;
        if let Some(r) = renewer {
            r.abort();
        }
        result
    }

    fn renew_lease_while_running(&self, id: RunId, run: &RunRow) -> tokio::task::JoinHandle<()> {
        let runs = self.clone();
        let holder = self.holder(id, &run.actor);
        let name = run.cluster.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                match runs.inner.clusters.client(&name).await {
                    Ok(client) => {
                        if let Err(e) = lease::renew(&client, &holder).await {
                            tracing::warn!(run = id.0, error = %error_chain(&e), "lease renewal failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(run = id.0, error = %error_chain(&e), "lease renewal: no client")
                    }
                }
            }
        })
    }

    /// One step: cancelled if asked, else marked running, audited first, executed, and its
    /// end recorded (a failure's error in its output).
    async fn run_one(
        &self,
        run: &RunRow,
        caller: &Caller,
        executor: &mut dyn Executor,
        step: &StepRow,
        cancel: &watch::Receiver<bool>,
    ) -> Result<(), RunError> {
        let (id, store) = (run.id, &self.inner.store);
        if *cancel.borrow() {
            store
                .set_step_status(id, step.idx, StepStatus::Cancelled)
                .await?;
            return Err(RunError::Kube(k8s::KubeError::Cancelled));
        }
        store
            .set_step_status(id, step.idx, StepStatus::Running)
            .await?;
        self.bump();
        faults::point(&[
            &format!("step {} before", step.idx),
            &format!("step {} before", step.name),
        ])
        .await;
        let entry = AuditEntry::new(caller, Action::RunStep, run_target(run), Outcome::Attempted)
            .detail("workflow", run.workflow.as_str())
            .detail("step", step.name.clone());
        let work = async {
            faults::point(&[
                &format!("step {} audited", step.idx),
                &format!("step {} audited", step.name),
            ])
            .await;
            executor.run_step(step.idx, &step.name).await
        };
        let done = self.inner.audit.guarded(entry, work).await;
        let (status, err) = match done {
            Ok(()) => (StepStatus::Done, None),
            Err(GuardedError::AuditUnavailable(a)) => {
                (StepStatus::Failed, Some(RunError::AuditUnavailable(a)))
            }
            Err(GuardedError::Action(e @ RunError::Kube(k8s::KubeError::Cancelled))) => {
                (StepStatus::Cancelled, Some(e))
            }
            Err(GuardedError::Action(e)) => (StepStatus::Failed, Some(e)),
        };
        if let (StepStatus::Failed, Some(e)) = (status, &err) {
            let line = format!("error: {e}");
            if let Err(s) = store.append_step_output(id, step.idx, &line).await {
                tracing::warn!(run = id.0, error = %error_chain(&s), "could not record a step's error");
            }
        }
        store.set_step_status(id, step.idx, status).await?;
        self.bump();
        if status == StepStatus::Done {
            faults::point(&[
                &format!("step {} done", step.idx),
                &format!("step {} done", step.name),
            ])
            .await;
        }
        err.map_or(Ok(()), Err)
    }
}
