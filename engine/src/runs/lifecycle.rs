//! The run lifecycle, the same for every workflow: start (consent checked, audit first, one
//! run per cluster, the Lease when the workflow's policy takes it), the task that drives the
//! steps through the workflow's executor, cancel, resume, abandon, and the seal of a finished
//! run (its digest in the final audit record).

use grappe_views::vocab::Level;
use serde_json::Value;
use tokio::sync::watch;

use super::policy::Actor;
use super::{Confirmation, RunError, RunId, RunStatus, Runs, lease};
use crate::audit::{Action, AuditEntry, Caller, Outcome, Target, error_chain};
use crate::model::{ActiveRun, Plan, RunRow, Workflow};
use crate::names::ClusterName;
use crate::store::runs::{NewRun, NewRunObject};
use crate::users::Role;

/// A start as a person confirms it: the plan they saw (its workflow, cluster, request and
/// hash), the words they typed, and whether the plan's offer stays ticked.
#[derive(Debug, Clone)]
pub struct Start {
    pub workflow: Workflow,
    pub cluster: ClusterName,
    /// The request the confirmed plan was made from; the workflow plans again from it.
    pub request: Value,
    /// The hash of the plan the user confirmed.
    pub plan_hash: String,
    /// Whether what the plan offers besides (a recovery's rollback) is included.
    pub offer: bool,
    pub confirmation: Confirmation,
}

impl Start {
    /// The start of `plan` as confirmed with `confirmation`, its offer included.
    #[must_use]
    pub fn of(plan: &Plan, confirmation: Confirmation) -> Self {
        Self {
            workflow: plan.workflow,
            cluster: plan.cluster.clone(),
            request: plan.request.clone(),
            plan_hash: plan.hash.clone(),
            offer: true,
            confirmation,
        }
    }
}

/// What a workflow's start hands the core: the plan it computed again (sealed), the parameters
/// its executor reads back, the step names, and what the audit records name.
#[derive(Debug, Clone)]
pub struct Launch {
    pub plan: Plan,
    pub params: serde_json::Value,
    pub steps: Vec<String>,
    /// The node(s) the run acts on, for its audit records (a drain's nodes, a reset's node).
    pub node: Option<String>,
    /// Runs this one is linked to, as audit details (`rollback_of`: the install it undoes).
    pub links: Vec<(&'static str, RunId)>,
}

impl Launch {
    /// A launch with no node and no link.
    pub(crate) fn new(plan: Plan, params: Value, steps: Vec<String>) -> Self {
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
            cluster: Some(self.plan.cluster.to_string()),
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
    plan: &Plan,
    expected_hash: &str,
    confirmation: &Confirmation,
) -> Result<(), RunError> {
    let word = plan.confirm.clone();
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
    /// Starts a confirmed plan: `actor`'s role must be one that may start the workflow with
    /// this request (its declared policy, its options), then the workflow plans again from the
    /// request and the run starts only if that plan is the one confirmed.
    ///
    /// # Errors
    /// [`RunError::Forbidden`], [`RunError::UnknownWorkflow`], the workflow's planning errors,
    /// then as the launch: confirmation, plan change, failed checks, a busy cluster, the Lease.
    pub async fn start(&self, actor: &Actor, start: Start) -> Result<RunId, RunError> {
        self.may_start(actor, start.workflow, &start.request)?;
        let kind = self
            .inner
            .registry
            .kind(start.workflow)
            .ok_or(RunError::UnknownWorkflow(start.workflow))?;
        let launch = kind
            .prepare(self, &start.cluster, &start.request, start.offer)
            .await?;
        self.launch(&actor.caller, launch, &start.plan_hash, start.confirmation)
            .await
    }

    /// Whether `actor` may start `workflow` with `request`: the workflow's declared role, or
    /// more when the request's options need it (a drain that disables eviction: admins).
    ///
    /// # Errors
    /// [`RunError::Forbidden`] naming the role needed.
    pub fn may_start(
        &self,
        actor: &Actor,
        workflow: Workflow,
        request: &Value,
    ) -> Result<(), RunError> {
        let needed = self
            .inner
            .registry
            .kind(workflow)
            .map_or(Role::Admin, |k| k.start_role(request));
        if actor.role.allows(needed) {
            return Ok(());
        }
        tracing::warn!(actor = %actor.caller.actor, workflow = %workflow, "start refused: role too low");
        Err(RunError::Forbidden {
            what: "start",
            needed: needed.as_str(),
        })
    }

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
        let policy = self.inner.registry.policy(launch.plan.workflow);
        let target = launch.target();
        // The audit record comes first: if it cannot be written, nothing starts.
        let plan = &launch.plan;
        let mut entry =
            AuditEntry::new(caller, Action::RunStart, target.clone(), Outcome::Attempted)
                .detail("workflow", plan.workflow.as_str())
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
                    cluster: plan.cluster.to_string(),
                    active,
                };
                let refused = AuditEntry::new(caller, Action::RunStart, target, Outcome::Denied)
                    .detail("workflow", plan.workflow.as_str())
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
            self.inner
                .store
                .finish_run(id, RunStatus::Failed, Some(&e.failure()))
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
        let plan_json = serde_json::to_string(plan).map_err(RunError::Encode)?;
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
        let confirmation_json = serde_json::to_string(confirmation).map_err(RunError::Encode)?;
        Ok(self
            .inner
            .store
            .insert_run(&NewRun {
                cluster: plan.cluster.as_str(),
                workflow: plan.workflow.as_str(),
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
        cluster: &ClusterName,
        actor: &str,
    ) -> Result<(), RunError> {
        let client = self.client_of(cluster).await?;
        let holder = self.holder(id, actor);
        // A Lease held by a run of this instance is stale: one run at a time holds a cluster
        // (the database's index), so another of our runs holding it has ended without giving
        // it back (its API server was down then).
        let ours = format!("{}/run-", self.inner.instance);
        lease::acquire(&client, &holder, &|h: &str| h.starts_with(&ours)).await?;
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
        cluster: Some(run.cluster.to_string()),
        node: None,
        object: Some(format!("run/{}", run.id.0)),
    }
}
