//! The run lifecycle, the same for every workflow: start (consent checked, audit first, one
//! run per cluster, the Lease when the workflow's policy takes it), the task that drives the
//! steps through the workflow's executor, cancel, resume, abandon, and the seal of a finished
//! run (its digest in the final audit record).

use grappe_views::runs::PlanView;
use grappe_views::vocab::Level;
use tokio::sync::watch;

use super::{Confirmation, RunError, RunId, RunStatus, Runs, lease};
use crate::audit::{Action, AuditEntry, Caller, Outcome, Target, error_chain};
use crate::model::{ActiveRun, RunRow};
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
    if let Some(failed) = plan.checks.iter().find(|c| c.level == Level::Fail) {
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
        let policy = self.inner.registry.policy_of(&launch.plan.workflow);
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

    pub(super) fn holder(&self, id: RunId, actor: &str) -> String {
        format!("{}/run-{}/{}", self.inner.instance, id.0, actor)
    }

    pub(super) async fn take_lease(
        &self,
        id: RunId,
        cluster: &str,
        actor: &str,
    ) -> Result<(), RunError> {
        let client = self.client_of(cluster).await?;
        let holder = self.holder(id, actor);
        let same_run = format!("{}/run-{}/", self.inner.instance, id.0);
        lease::acquire(&client, &holder, &|h: &str| h.starts_with(&same_run)).await?;
        Ok(())
    }

    pub(super) fn spawn(&self, id: RunId, caller: Caller) {
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
}

/// The audit target of a record about a run.
pub(super) fn run_target(run: &RunRow) -> Target {
    Target {
        cluster: Some(run.cluster.clone()),
        node: None,
        object: Some(format!("run/{}", run.id.0)),
    }
}
