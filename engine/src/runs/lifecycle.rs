//! The run lifecycle, the same for every workflow: start (consent checked, audit first, one
//! run per cluster, the Lease when the workflow's policy takes it), the task that drives the
//! steps through the workflow's executor, cancel, resume, abandon, and the seal of a finished
//! run (its digest in the final audit record).

use std::time::Duration;

use grappe_views::runs::PlanView;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{Confirmation, RunError, RunId, RunStatus, Runs, StepStatus, k8s, lease};
use crate::audit::{Action, AuditEntry, Caller, Outcome, Target, error_chain};
use crate::model::{ActiveRun, RunRow};
use crate::names::ClusterName;
use crate::store::runs::{NewRun, NewRunObject};

/// What a workflow's start hands the core: the plan it computed again (sealed), the parameters
/// its executor reads back, the step names, and what the audit records name.
#[derive(Debug, Clone)]
pub struct Launch {
    pub plan: PlanView,
    pub params: serde_json::Value,
    pub steps: Vec<String>,
    /// The node(s) the run acts on, for its audit records (a drain's nodes, a reset's node).
    pub node: Option<String>,
    /// Runs this one is linked to, as audit details (`rollback_of`: the install it undoes).
    pub links: Vec<(&'static str, RunId)>,
}

impl Launch {
    /// A launch with no node and no link.
    pub(crate) fn new(plan: PlanView, params: serde_json::Value, steps: Vec<String>) -> Self {
        Self {
            plan,
            params,
            steps,
            node: None,
            links: Vec::new(),
        }
    }

    fn target(&self) -> Target {
        Target {
            cluster: Some(self.plan.cluster.clone()),
            node: self.node.clone(),
            object: self
                .plan
                .manifest_sha256
                .as_ref()
                .map(|s| format!("manifest/{s}")),
        }
    }
}

/// Whether `plan` is what the user confirmed: the typed words, the hash, no failed check.
fn consented(
    plan: &PlanView,
    expected_hash: &str,
    confirmation: &Confirmation,
) -> Result<(), RunError> {
    let word = plan.confirm_word();
    let typed = confirmation
        .typed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if typed != word {
        return Err(RunError::NotConfirmed(word));
    }
    if plan.hash != expected_hash {
        tracing::info!(cluster = %plan.cluster, confirmed = expected_hash, now = %plan.hash, "the plan changed between confirmation and start");
        tracing::debug!(plan = %serde_json::to_string(plan).unwrap_or_default(), "the plan now");
        return Err(RunError::PlanChanged);
    }
    if let Some(failed) = plan.checks.iter().find(|c| c.level == "fail") {
        return Err(RunError::ChecksFailed(failed.message.clone()));
    }
    Ok(())
}

impl Runs {
    /// Starts a planned run after checking the confirmation and that the plan still holds
    /// (the workflow computed it again from the same request).
    pub(crate) async fn launch(
        &self,
        caller: &Caller,
        launch: Launch,
        expected_hash: &str,
        confirmation: Confirmation,
    ) -> Result<RunId, RunError> {
        consented(&launch.plan, expected_hash, &confirmation)?;
        let policy = self.inner.registry.policy(&launch.plan.workflow);
        let target = launch.target();
        // The audit record comes first: if it cannot be written, nothing starts.
        let plan = &launch.plan;
        let mut entry =
            AuditEntry::new(caller, Action::RunStart, target.clone(), Outcome::Attempted)
                .detail("workflow", plan.workflow.clone())
                .detail("title", plan.title.clone())
                .detail("plan_hash", plan.hash.clone())
                .detail("manifest_source", plan.manifest_source.clone())
                .detail("manifest_sha256", plan.manifest_sha256.clone())
                .detail("params", launch.params.clone());
        for (key, value) in &launch.links {
            entry = entry.detail(key, value.0);
        }
        self.inner
            .audit
            .append(entry)
            .await
            .map_err(RunError::AuditUnavailable)?;
        let id = match self.insert(caller, &launch, &confirmation).await? {
            Ok(id) => id,
            Err(active) => {
                let err = RunError::Busy {
                    cluster: plan.cluster.clone(),
                    active,
                };
                let refused = AuditEntry::new(caller, Action::RunStart, target, Outcome::Denied)
                    .detail("workflow", plan.workflow.clone())
                    .detail("error", err.to_string());
                if let Err(e) = self.inner.audit.append(refused).await {
                    tracing::error!(error = %error_chain(&e), "could not record a refused run");
                }
                return Err(err);
            }
        };
        if policy.lease
            && let Err(e) = self.take_lease(id, &plan.cluster, &caller.actor).await
        {
            let message = e.to_string();
            self.inner
                .store
                .finish_run(id, RunStatus::Failed, Some(&message))
                .await?;
            self.seal(id, caller).await;
            return Err(e);
        }
        self.spawn(id, caller.clone());
        Ok(id)
    }

    /// Inserts the run with its steps and planned objects; `Err(active)` when another run
    /// holds the cluster.
    async fn insert(
        &self,
        caller: &Caller,
        launch: &Launch,
        confirmation: &Confirmation,
    ) -> Result<Result<RunId, ActiveRun>, RunError> {
        let plan = &launch.plan;
        let plan_json = serde_json::to_string(plan).map_err(|e| RunError::Step(e.to_string()))?;
        let objects: Vec<NewRunObject> = plan
            .objects
            .iter()
            .map(|o| NewRunObject {
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                planned: o.action,
            })
            .collect();
        let params_json = launch.params.to_string();
        let confirmation_json =
            serde_json::to_string(confirmation).map_err(|e| RunError::Step(e.to_string()))?;
        Ok(self
            .inner
            .store
            .insert_run(&NewRun {
                cluster: &plan.cluster,
                workflow: &plan.workflow,
                params: &params_json,
                actor: &caller.actor,
                plan: &plan_json,
                plan_hash: &plan.hash,
                title: &plan.title,
                manifest_source: plan.manifest_source.as_deref(),
                manifest_sha256: plan.manifest_sha256.as_deref(),
                confirmation: &confirmation_json,
                steps: &launch.steps,
                objects: &objects,
            })
            .await?)
    }

    fn holder(&self, id: RunId, actor: &str) -> String {
        format!("{}/run-{}/{}", self.inner.instance, id.0, actor)
    }

    async fn take_lease(&self, id: RunId, cluster: &str, actor: &str) -> Result<(), RunError> {
        let client = self.client_of(cluster).await?;
        let holder = self.holder(id, actor);
        let same_run = format!("{}/run-{}/", self.inner.instance, id.0);
        lease::acquire(&client, &holder, &|h: &str| h.starts_with(&same_run)).await?;
        Ok(())
    }

    fn spawn(&self, id: RunId, caller: Caller) {
        let (tx, rx) = watch::channel(false);
        if let Ok(mut map) = self.inner.executing.lock() {
            map.insert(id, tx);
        }
        let runs = self.clone();
        tokio::spawn(async move {
            runs.drive(id, &caller, rx).await;
            if let Ok(mut map) = runs.inner.executing.lock() {
                map.remove(&id);
            }
            runs.bump();
        });
    }

    /// Executes the run's unfinished steps in order, then ends it.
    async fn drive(&self, id: RunId, caller: &Caller, cancel: watch::Receiver<bool>) {
        let outcome = self.drive_steps(id, caller, &cancel).await;
        let (status, error) = match outcome {
            Ok(()) => (RunStatus::Succeeded, None),
            Err(RunError::Kube(k8s::KubeError::Cancelled)) => (RunStatus::Cancelled, None),
            Err(e) => {
                tracing::warn!(run = id.0, error = %error_chain(&e), "run failed");
                (RunStatus::Failed, Some(e.to_string()))
            }
        };
        if let Err(e) = self
            .inner
            .store
            .finish_run(id, status, error.as_deref())
            .await
        {
            tracing::error!(run = id.0, error = %error_chain(&e), "could not record the end of a run");
        }
        if let Ok(Some(run)) = self.inner.store.run(id).await
            && let Ok(name) = ClusterName::parse(&run.cluster)
            && let Ok(client) = self.inner.clusters.client(&name).await
            && let Err(e) = lease::release(&client, &self.holder(id, &run.actor)).await
        {
            tracing::warn!(run = id.0, error = %error_chain(&e), "could not release the lease");
        }
        self.seal(id, caller).await;
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
            .kind(&run.workflow)
            .ok_or_else(|| RunError::Step(format!("unknown workflow {}", run.workflow)))?;
        let mut executor = kind.executor(self, &run, cancel.clone()).await?;
        let renewer = kind
            .policy()
            .lease
            .then(|| self.renew_lease_while_running(id, &run));
        let result = async {
            for step in self.inner.store.run_steps(id).await? {
                if step.status == StepStatus::Done {
                    continue;
                }
                if *cancel.borrow() {
                    self.inner
                        .store
                        .set_step_status(id, step.idx, StepStatus::Cancelled)
                        .await?;
                    return Err(RunError::Kube(k8s::KubeError::Cancelled));
                }
                self.inner
                    .store
                    .set_step_status(id, step.idx, StepStatus::Running)
                    .await?;
                self.bump();
                let entry = AuditEntry::new(
                    caller,
                    Action::RunStep,
                    run_target(&run),
                    Outcome::Attempted,
                )
                .detail("workflow", run.workflow.clone())
                .detail("step", step.name.clone());
                let done = self
                    .inner
                    .audit
                    .guarded(entry, executor.run_step(step.idx, &step.name))
                    .await;
                match done {
                    Ok(()) => {
                        self.inner
                            .store
                            .set_step_status(id, step.idx, StepStatus::Done)
                            .await?;
                        self.bump();
                    }
                    Err(e) => {
                        let (status, err) = match e {
                            crate::audit::GuardedError::AuditUnavailable(a) => {
                                (StepStatus::Failed, RunError::AuditUnavailable(a))
                            }
                            crate::audit::GuardedError::Action(RunError::Kube(
                                k8s::KubeError::Cancelled,
                            )) => (
                                StepStatus::Cancelled,
                                RunError::Kube(k8s::KubeError::Cancelled),
                            ),
                            crate::audit::GuardedError::Action(a) => (StepStatus::Failed, a),
                        };
                        if status == StepStatus::Failed {
                            let _ = self
                                .inner
                                .store
                                .append_step_output(id, step.idx, &format!("error: {err}"))
                                .await;
                        }
                        self.inner
                            .store
                            .set_step_status(id, step.idx, status)
                            .await?;
                        self.bump();
                        return Err(err);
                    }
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
        let cluster = run.cluster.clone();
        tokio::spawn(async move {
            let Ok(name) = ClusterName::parse(&cluster) else {
                return;
            };
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

    /// Writes the run's digest and its final audit record.
    async fn seal(&self, id: RunId, caller: &Caller) {
        let result = async {
            let run = self.load(id).await?;
            let digest = self.digest(&run).await?;
            self.inner.store.set_run_digest(id, &digest).await?;
            let outcome = if run.status == RunStatus::Succeeded {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            let entry = AuditEntry::new(caller, Action::RunFinish, run_target(&run), outcome)
                .detail("workflow", run.workflow.clone())
                .detail("status", run.status.as_str())
                .detail("error", run.error.clone())
                .detail("digest", digest);
            self.inner
                .audit
                .append(entry)
                .await
                .map_err(RunError::AuditUnavailable)?;
            Ok::<_, RunError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(run = id.0, error = %error_chain(&e), "could not seal a finished run");
        }
    }

    /// sha256 over the run's rows (without the digest itself).
    async fn digest(&self, run: &RunRow) -> Result<String, RunError> {
        let steps = self.inner.store.run_steps(run.id).await?;
        let objects = self.inner.store.run_objects(run.id).await?;
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        for s in [
            run.id.0.to_string().as_str(),
            &run.cluster,
            &run.workflow,
            &run.params,
            &run.actor,
            &run.plan,
            &run.plan_hash,
            &run.title,
            run.manifest_source.as_deref().unwrap_or(""),
            run.manifest_sha256.as_deref().unwrap_or(""),
            &run.confirmation,
            run.status.as_str(),
            &run.started_at,
            run.finished_at.as_deref().unwrap_or(""),
            run.error.as_deref().unwrap_or(""),
        ] {
            field(s);
        }
        for s in &steps {
            for f in [
                s.name.as_str(),
                s.status.as_str(),
                s.started_at.as_deref().unwrap_or(""),
                s.finished_at.as_deref().unwrap_or(""),
                &s.output,
            ] {
                field(f);
            }
        }
        for o in &objects {
            for f in [
                o.kind.as_str(),
                o.namespace.as_deref().unwrap_or(""),
                &o.name,
                o.planned.as_str(),
                o.before.as_deref().unwrap_or(""),
                o.done.as_deref().unwrap_or(""),
            ] {
                field(f);
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Whether a finished run's rows still hash to the digest sealed in the audit log.
    ///
    /// # Errors
    /// [`RunError`] when the run or the audit log cannot be read.
    pub async fn verify(&self, id: RunId) -> Result<bool, RunError> {
        let run = self.load(id).await?;
        let sealed = self
            .inner
            .store
            .audit_details_for(Action::RunFinish.as_str(), &format!("run/{}", id.0))
            .await?;
        let Some(sealed) = sealed else {
            return Ok(false);
        };
        let sealed: serde_json::Value = serde_json::from_str(&sealed).unwrap_or_default();
        let digest = self.digest(&run).await?;
        Ok(
            sealed.get("digest").and_then(|d| d.as_str()) == Some(digest.as_str())
                && run.digest.as_deref() == Some(digest.as_str()),
        )
    }

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
        if self.inner.registry.policy(&run.workflow).lease {
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

/// The audit target of a record about a run.
fn run_target(run: &RunRow) -> Target {
    Target {
        cluster: Some(run.cluster.clone()),
        node: None,
        object: Some(format!("run/{}", run.id.0)),
    }
}
