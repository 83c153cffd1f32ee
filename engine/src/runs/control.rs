//! Cancel, resume and abandon: what a person does to a run after its start. Each is audited
//! first: an `attempted` record before anything changes, its real outcome after (a refusal,
//! such as a run that is no longer interrupted, is recorded as a failure).

use super::lifecycle::run_target;
use super::{RunError, RunId, RunStatus, Runs};
use crate::audit::{Action, AuditEntry, Caller, Outcome};
use crate::model::RunRow;

impl Runs {
    /// Asks a running run to stop (between steps, or inside a wait).
    ///
    /// # Errors
    /// [`RunError::WrongStatus`] when it is not running.
    pub async fn cancel(&self, caller: &Caller, id: RunId) -> Result<(), RunError> {
        let run = self.load(id).await?;
        let entry = entry(caller, Action::RunCancel, &run);
        self.inner
            .audit
            .guarded(entry, async {
                if self.inner.store.request_cancel(id).await? {
                    Ok(())
                } else {
                    Err(wrong_status(&run, "running"))
                }
            })
            .await?;
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
            return Err(wrong_status(&run, "interrupted"));
        }
        let entry = entry(caller, Action::RunResume, &run);
        self.inner
            .audit
            .guarded(entry, async {
                if self.inner.registry.policy(run.workflow).lease {
                    self.take_lease(id, &run.cluster, &run.actor).await?;
                }
                self.interrupted_to(id, RunStatus::Running).await
            })
            .await?;
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
        let entry = entry(caller, Action::RunAbandon, &run);
        self.inner
            .audit
            .guarded(entry, self.interrupted_to(id, RunStatus::Abandoned))
            .await?;
        self.seal(id, caller).await;
        self.bump();
        Ok(())
    }

    /// Moves an interrupted run to `next`; refused when it is no longer interrupted.
    async fn interrupted_to(&self, id: RunId, next: RunStatus) -> Result<(), RunError> {
        if self
            .inner
            .store
            .transition_run(id, RunStatus::Interrupted, next)
            .await?
        {
            Ok(())
        } else {
            Err(RunError::WrongStatus {
                id,
                status: "changed",
                expected: "interrupted",
            })
        }
    }
}

fn entry(caller: &Caller, action: Action, run: &RunRow) -> AuditEntry {
    AuditEntry::new(caller, action, run_target(run), Outcome::Success)
}

fn wrong_status(run: &RunRow, expected: &'static str) -> RunError {
    RunError::WrongStatus {
        id: run.id,
        status: run.status.as_str(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::{AuditFilter, Caller, Outcome};
    use crate::runs::RunError;
    use crate::{Engine, EngineConfig};

    /// A refused abandon used to leave a `success` record of an action that never happened.
    #[tokio::test]
    async fn each_control_is_recorded_attempted_first_then_its_real_outcome() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::start(EngineConfig {
            database: dir.path().join("grappe.db"),
            clusters: Vec::new(),
            throttle: crate::auth::ThrottlePolicy::default(),
            manifest_mirror: None,
            recover_runs: false,
            ssh: Default::default(),
        })
        .await
        .expect("engine");
        let id = engine
            .store
            .insert_run(&crate::store::testing::run(&[]))
            .await
            .expect("insert")
            .expect("run");
        let ada = Caller::cli("ada");
        let outcomes = async |action: &str| {
            let filter = AuditFilter {
                action: Some(action.to_owned()),
                ..AuditFilter::default()
            };
            let mut records = engine.audit.export(&filter, 10).await.expect("audit");
            records.sort_by_key(|r| r.id.0);
            records.iter().map(|r| r.outcome).collect::<Vec<_>>()
        };

        // Abandon of a running run: refused, and recorded as refused.
        let refused = engine.runs.abandon(&ada, id).await;
        assert!(
            matches!(refused, Err(RunError::WrongStatus { .. })),
            "{refused:?}"
        );
        assert_eq!(
            outcomes("run.abandon").await,
            [Outcome::Attempted, Outcome::Failure]
        );
        // Cancel of a running run: done, recorded attempted then success.
        engine.runs.cancel(&ada, id).await.expect("cancel");
        assert_eq!(
            outcomes("run.cancel").await,
            [Outcome::Attempted, Outcome::Success]
        );
        let report = engine.audit.verify().await.expect("verify");
        assert!(
            matches!(report, crate::audit::VerifyReport::Intact { .. }),
            "{report:?}"
        );
    }
}
