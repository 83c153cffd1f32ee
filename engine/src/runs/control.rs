//! Cancel, resume and abandon: what a person does to a run after its start.

use super::lifecycle::run_target;
use super::{RunError, RunId, RunStatus, Runs};
use crate::audit::{Action, AuditEntry, Caller, Outcome};

impl Runs {
    /// Asks a running run to stop (between steps, or inside a wait).
    ///
    /// # Errors
    /// [`RunError::WrongStatus`] when it is not running.
    pub async fn cancel(&self, caller: &Caller, id: RunId) -> Result<(), RunError> {
        let run = self.load(id).await?;
        let entry = AuditEntry::new(
            caller,
            Action::RunCancel,
            run_target(&run),
            Outcome::Success,
        );
        if !self.inner.store.request_cancel(id).await? {
            return Err(RunError::WrongStatus {
                id,
                status: run.status.as_str(),
                expected: "running",
            });
        }
        self.inner
            .audit
            .append(entry)
            .await
            .map_err(RunError::AuditUnavailable)?;
        if let Ok(map) = self.inner.executing.lock()
            && let Some(tx) = map.get(&id)
        {
            let _ = tx.send(true);
        }
        self.bump();
        Ok(())
    }

    /// Resumes an interrupted run from its first unfinished step.
    ///
    /// # Errors
    /// [`RunError::WrongStatus`] unless interrupted; lease errors.
    pub async fn resume(&self, caller: &Caller, id: RunId) -> Result<(), RunError> {
        let run = self.load(id).await?;
        if run.status != RunStatus::Interrupted {
            return Err(RunError::WrongStatus {
                id,
                status: run.status.as_str(),
                expected: "interrupted",
            });
        }
        let entry = AuditEntry::new(
            caller,
            Action::RunResume,
            run_target(&run),
            Outcome::Attempted,
        );
        self.inner
            .audit
            .append(entry)
            .await
            .map_err(RunError::AuditUnavailable)?;
        if self.inner.registry.policy(run.workflow).lease {
            self.take_lease(id, &run.cluster, &run.actor).await?;
        }
        if !self
            .inner
            .store
            .transition_run(id, RunStatus::Interrupted, RunStatus::Running)
            .await?
        {
            return Err(RunError::WrongStatus {
                id,
                status: "changed",
                expected: "interrupted",
            });
        }
        self.spawn(id, caller.clone());
        self.bump();
        Ok(())
    }

    /// Gives up an interrupted run: it stays in the history, the cluster is free again.
    ///
    /// # Errors
    /// [`RunError::WrongStatus`] unless interrupted.
    pub async fn abandon(&self, caller: &Caller, id: RunId) -> Result<(), RunError> {
        let run = self.load(id).await?;
        let entry = AuditEntry::new(
            caller,
            Action::RunAbandon,
            run_target(&run),
            Outcome::Success,
        );
        self.inner
            .audit
            .append(entry)
            .await
            .map_err(RunError::AuditUnavailable)?;
        if !self
            .inner
            .store
            .transition_run(id, RunStatus::Interrupted, RunStatus::Abandoned)
            .await?
        {
            return Err(RunError::WrongStatus {
                id,
                status: run.status.as_str(),
                expected: "interrupted",
            });
        }
        self.seal(id, caller).await;
        self.bump();
        Ok(())
    }
}
