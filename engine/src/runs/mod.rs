//! Workflow runs: the engine that install, rollback and every later workflow (drain, reset,
//! recovery) run on.
//!
//! A run is a persisted state machine in SQLite (run, steps, objects touched with their
//! snapshots). Its life:
//! - **start**: the plan is computed again and must have the hash the user confirmed; an audit
//!   record is written first (no record, no run); the run row is inserted (a unique index keeps
//!   one active run per cluster) and the cluster's `grappe-workflow` Lease is taken (one run
//!   across Grappe instances); then a task drives it.
//! - **steps** run in order; each is audited before it starts and is idempotent: it looks at the
//!   cluster first, so a resumed run repeats a half-done step safely. Cancel is honoured between
//!   steps and inside waits.
//! - **crash**: at startup, runs left "running" become "interrupted" (nothing executes them any
//!   more); the user resumes one (from its first unfinished step) or abandons it.
//! - **end**: a digest over the run's rows goes into its final audit record, which the audit
//!   hash chain covers, so a changed run row is detectable ([`Runs::verify`]).

pub mod cni;
pub mod drain;
pub mod k8s;
pub mod lease;
pub mod recover;
pub mod reset;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grappe_views::runs::{
    CheckView, DrainPreviewView, PlanView, RunObjectView, RunSummaryView, RunView, StepView,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::audit::{
    Action, AuditEntry, AuditError, AuditLog, Caller, Outcome, Target, error_chain,
};
use crate::clusters::{ClusterError, Clusters};
use crate::manifests::{Fetcher, ManifestError, Source};
use crate::names::ClusterName;
use crate::state::ClusterStates;
use crate::store::runs::{NewRun, NewRunObject, ObjectRow, RunRow, StepRow};
use crate::store::{Store, StoreError};

/// A run's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $(Self::$variant => $text),+ } }
            pub fn parse(s: &str) -> Option<Self> { Self::ALL.iter().copied().find(|v| v.as_str() == s) }
        }
    };
}

string_enum!(
    /// A run's status.
    RunStatus {
        Running => "running",
        Interrupted => "interrupted",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        Abandoned => "abandoned",
    }
);

string_enum!(
    /// A step's status.
    StepStatus {
        Pending => "pending",
        Running => "running",
        Done => "done",
        Failed => "failed",
        Cancelled => "cancelled",
        Interrupted => "interrupted",
    }
);

string_enum!(
    /// The workflows.
    Workflow {
        CniInstall => "cni.install",
        CniRollback => "cni.rollback",
        CniRemove => "cni.remove",
        NodeDrain => "node.drain",
        NodeReset => "node.reset",
        ApiserverRecover => "apiserver.recover",
    }
);

/// Errors of runs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unknown cluster {0}")]
    UnknownCluster(String),
    #[error("no run {0}")]
    UnknownRun(RunId),
    #[error("cluster {cluster} is busy: run {} ({}) by {} is {}", .active.id, .active.workflow, .active.actor, .active.status.as_str())]
    Busy {
        cluster: String,
        active: crate::store::runs::ActiveRun,
    },
    #[error(transparent)]
    LeaseHeld(#[from] lease::LeaseError),
    #[error("the cluster changed since the plan was made: plan again")]
    PlanChanged,
    #[error("a preflight check failed: {0}")]
    ChecksFailed(String),
    #[error("type {0:?} to confirm")]
    NotConfirmed(String),
    #[error("run {id} is {status}, not {expected}")]
    WrongStatus {
        id: RunId,
        status: &'static str,
        expected: &'static str,
    },
    #[error("run {0} cannot be rolled back: {1}")]
    NotRollbackable(RunId, String),
    #[error("invalid manifest: {0}")]
    Manifest(#[from] crate::manifests::parse::ParseError),
    #[error("invalid option: {0}")]
    Options(#[from] crate::manifests::parse::OptionsError),
    #[error(transparent)]
    ManifestSource(#[from] ManifestError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Kube(#[from] k8s::KubeError),
    #[error("cannot write the audit record, so nothing was done")]
    AuditUnavailable(#[source] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Step(String),
    #[error("invalid drain: {0}")]
    Drain(String),
    /// A node host could not be reached or refused (resets, recovery).
    #[error("SSH")]
    Ssh(#[from] crate::ssh::SshError),
}

/// The runs service. Cheap to clone.
#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub store: Store,
    pub audit: AuditLog,
    pub clusters: Clusters,
    pub states: ClusterStates,
    pub fetcher: Fetcher,
    /// SSH to node hosts (resets, recovery).
    pub ssh: crate::ssh::Ssh,
    /// `host:database` prefix of this instance's lease holder identities.
    pub instance: String,
    /// Cancel signals of the runs this process executes.
    pub executing: Mutex<HashMap<RunId, watch::Sender<bool>>>,
    /// Bumped on every change of any run (steps, output, objects): the live page listens.
    pub changes: watch::Sender<u64>,
}

/// How long a run waits for the rollout unless its parameters say otherwise.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(600);

/// The confirmation that comes with a start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmation {
    /// What the user typed (must be the cluster's name).
    pub typed: String,
    /// Whether the password was asked again (login older than 5 minutes).
    pub reauthenticated: bool,
}

/// The services a run uses.
pub struct RunServices {
    pub store: Store,
    pub audit: AuditLog,
    pub clusters: Clusters,
    pub states: ClusterStates,
    pub fetcher: Fetcher,
    pub ssh: crate::ssh::Ssh,
}

impl Runs {
    /// Prepares the service and marks runs left "running" by a previous process "interrupted".
    ///
    /// # Errors
    /// [`RunError::Store`] when the database cannot be updated.
    pub async fn start(
        services: RunServices,
        database: &std::path::Path,
        recover: bool,
    ) -> Result<Self, RunError> {
        let RunServices {
            store,
            audit,
            clusters,
            states,
            fetcher,
            ssh,
        } = services;
        let interrupted = if recover {
            store.interrupt_running_runs().await?
        } else {
            Vec::new()
        };
        for id in &interrupted {
            tracing::warn!(
                run = id.0,
                "run was left running by a previous process: now interrupted"
            );
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "grappe".into());
        let db = hex::encode(&Sha256::digest(database.to_string_lossy().as_bytes())[..4]);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                audit,
                clusters,
                states,
                fetcher,
                ssh,
                instance: format!("grappe@{host}:{db}"),
                executing: Mutex::new(HashMap::new()),
                changes: watch::channel(0).0,
            }),
        })
    }

    /// Gets a manifest from `source`. A catalog download with another checksum is refused and
    /// the refusal audited (`manifest.refused`).
    ///
    /// # Errors
    /// [`ManifestError`]; [`ManifestError::Audit`] when a refusal cannot be recorded.
    pub async fn manifest(
        &self,
        caller: &Caller,
        source: Source<'_>,
    ) -> Result<crate::manifests::Manifest, ManifestError> {
        let fetcher = &self.inner.fetcher;
        let result = match source {
            Source::Catalog(id) => fetcher.catalog(id).await,
            Source::Url(url) => fetcher.url(url).await,
            Source::Upload { file_name, text } => crate::manifests::Manifest::from_bytes(
                text.as_bytes().to_vec(),
                crate::manifests::upload_source(file_name),
            ),
        };
        if let Err(e @ ManifestError::ChecksumMismatch { id, .. }) = &result {
            let entry = AuditEntry::new(
                caller,
                Action::ManifestRefused,
                Target::object(format!("manifest/{id}")),
                Outcome::Denied,
            )
            .detail("error", e.to_string());
            self.inner.audit.append(entry).await?;
        }
        result
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.inner.fetcher
    }

    /// A receiver that changes whenever any run changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Starts a planned run after checking the confirmation and that the plan still holds.
    /// `replan` computes the plan again from the same request.
    pub(crate) async fn launch(
        &self,
        caller: &Caller,
        plan: PlanView,
        expected_hash: &str,
        confirmation: Confirmation,
        params: serde_json::Value,
        steps: Vec<String>,
    ) -> Result<RunId, RunError> {
        let inner = &self.inner;
        let word = plan.confirm_word();
        if confirmation
            .typed
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            != word
        {
            return Err(RunError::NotConfirmed(word));
        }
        if plan.hash != expected_hash {
            tracing::info!(cluster = %plan.cluster, confirmed = expected_hash, now = %plan.hash, "the plan changed between confirmation and start");
            tracing::debug!(plan = %serde_json::to_string(&plan).unwrap_or_default(), "the plan now");
            return Err(RunError::PlanChanged);
        }
        if let Some(failed) = plan.checks.iter().find(|c| c.level == "fail") {
            return Err(RunError::ChecksFailed(failed.message.clone()));
        }
        let workflow = plan.workflow.clone();
        let target = Target {
            cluster: Some(plan.cluster.clone()),
            node: match (&plan.drain, &plan.reset) {
                (_, Some(r)) => Some(r.node.clone()),
                (Some(_), None) => Some(plan.confirm_word()),
                (None, None) => None,
            },
            object: plan
                .manifest_sha256
                .as_ref()
                .map(|s| format!("manifest/{s}")),
        };
        // The audit record comes first: if it cannot be written, nothing starts.
        let entry = AuditEntry::new(caller, Action::RunStart, target.clone(), Outcome::Attempted)
            .detail("workflow", workflow.clone())
            .detail("title", plan.title.clone())
            .detail("plan_hash", plan.hash.clone())
            .detail("manifest_source", plan.manifest_source.clone())
            .detail("manifest_sha256", plan.manifest_sha256.clone())
            .detail("params", params.clone());
        inner
            .audit
            .append(entry)
            .await
            .map_err(RunError::AuditUnavailable)?;
        let plan_json = serde_json::to_string(&plan).map_err(|e| RunError::Step(e.to_string()))?;
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
        let params_json = params.to_string();
        let confirmation_json =
            serde_json::to_string(&confirmation).map_err(|e| RunError::Step(e.to_string()))?;
        let inserted = inner
            .store
            .insert_run(&NewRun {
                cluster: &plan.cluster,
                workflow: &workflow,
                params: &params_json,
                actor: &caller.actor,
                plan: &plan_json,
                plan_hash: &plan.hash,
                title: &plan.title,
                manifest_source: plan.manifest_source.as_deref(),
                manifest_sha256: plan.manifest_sha256.as_deref(),
                confirmation: &confirmation_json,
                steps: &steps,
                objects: &objects,
            })
            .await?;
        let id = match inserted {
            Ok(id) => id,
            Err(active) => {
                let err = RunError::Busy {
                    cluster: plan.cluster.clone(),
                    active,
                };
                let refused = AuditEntry::new(caller, Action::RunStart, target, Outcome::Denied)
                    .detail("workflow", workflow)
                    .detail("error", err.to_string());
                if let Err(e) = inner.audit.append(refused).await {
                    tracing::error!(error = %error_chain(&e), "could not record a refused run");
                }
                return Err(err);
            }
        };
        // A recovery runs while the API server is down: no Lease can be taken.
        let lease = plan.workflow != Workflow::ApiserverRecover.as_str();
        if lease && let Err(e) = self.take_lease(id, &plan.cluster, &caller.actor).await {
            let message = e.to_string();
            inner
                .store
                .finish_run(id, RunStatus::Failed, Some(&message))
                .await?;
            self.seal(id, caller).await;
            return Err(e);
        }
        self.spawn(id, caller.clone());
        Ok(id)
    }

    /// The kube client of `cluster`; a cluster that is not configured is
    /// [`RunError::UnknownCluster`] (a 404 for the pages), whatever the caller.
    pub(crate) async fn client_of(&self, cluster: &str) -> Result<kube::Client, RunError> {
        let name = cluster_name(cluster)?;
        match self.inner.clusters.client(&name).await {
            Err(ClusterError::Unknown(c)) => Err(RunError::UnknownCluster(c)),
            other => Ok(other?),
        }
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

    /// Appends a line to a step's output and tells the live pages.
    pub(crate) async fn say(&self, id: RunId, idx: i64, line: &str) -> Result<(), RunError> {
        self.inner.store.append_step_output(id, idx, line).await?;
        self.bump();
        Ok(())
    }

    pub(crate) fn bump(&self) {
        self.inner.changes.send_modify(|v| *v += 1);
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
        let workflow = Workflow::parse(&run.workflow)
            .ok_or_else(|| RunError::Step(format!("unknown workflow {}", run.workflow)))?;
        let mut ctx = Context::load(self, &run, workflow, cancel.clone()).await?;
        let renewer = (workflow != Workflow::ApiserverRecover)
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
                .detail("workflow", workflow.as_str())
                .detail("step", step.name.clone());
                let done = self
                    .inner
                    .audit
                    .guarded(entry, ctx.run_step(workflow, step.idx, &step.name))
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
        if run.workflow != Workflow::ApiserverRecover.as_str() {
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

    async fn load(&self, id: RunId) -> Result<RunRow, RunError> {
        self.inner
            .store
            .run(id)
            .await?
            .ok_or(RunError::UnknownRun(id))
    }

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

    /// Everything recorded about one run.
    ///
    /// # Errors
    /// [`RunError::UnknownRun`], [`RunError::Store`].
    pub async fn view(&self, id: RunId) -> Result<RunView, RunError> {
        let run = self.load(id).await?;
        let steps = self.inner.store.run_steps(id).await?;
        let objects = self.inner.store.run_objects(id).await?;
        let plan: PlanView = serde_json::from_str(&run.plan)
            .map_err(|e| StoreError::Corrupt(format!("plan of run {id}: {e}")))?;
        let finished = !matches!(run.status, RunStatus::Running | RunStatus::Interrupted);
        Ok(RunView {
            summary: summary(&run),
            plan,
            confirmation: run.confirmation.clone(),
            steps: steps.iter().map(step_view).collect(),
            objects: objects.iter().map(object_view).collect(),
            cancel_requested: run.cancel_requested,
            can_roll_back: finished
                && run.workflow.starts_with("cni.")
                && objects.iter().any(|o| o.done.is_some()),
            digest: run.digest.clone(),
        })
    }
}

/// Writes runs as CSV (one line per run, the history's columns).
///
/// # Errors
/// [`csv::Error`] when writing fails.
pub fn write_csv<W: std::io::Write>(runs: &[RunSummaryView], out: W) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
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
    ])?;
    for r in runs {
        w.write_record([
            r.id.to_string(),
            r.cluster.clone(),
            r.workflow.clone(),
            r.title.clone(),
            r.actor.clone(),
            r.status.clone(),
            r.started_at.clone(),
            r.finished_at.clone().unwrap_or_default(),
            r.duration_seconds
                .map(|d| d.to_string())
                .unwrap_or_default(),
            r.manifest_source.clone().unwrap_or_default(),
            r.manifest_sha256.clone().unwrap_or_default(),
            r.error.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

pub(crate) fn check(id: &str, level: &str, message: impl Into<String>) -> CheckView {
    CheckView {
        id: id.to_owned(),
        level: level.to_owned(),
        message: message.into(),
    }
}

/// Seals a plan with the hash of what the user consents to: everything it shows but a drain's
/// live figures ([`DrainPreviewView::without_live_figures`]). Hashed, they refused a drain
/// previewed while a pod on the node turned from Pending to Running after a CNI install.
pub(crate) fn sealed(mut plan: PlanView) -> PlanView {
    plan.hash = String::new();
    let mut basis = plan.clone();
    basis.drain = plan
        .drain
        .as_ref()
        .map(DrainPreviewView::without_live_figures);
    let text = serde_json::to_string(&basis).unwrap_or_default();
    plan.hash = hex::encode(Sha256::digest(text.as_bytes()));
    plan
}

/// A run's parameters, as its start stored them.
pub(crate) fn run_params<T: serde::de::DeserializeOwned>(run: &RunRow) -> Result<T, RunError> {
    serde_json::from_str(&run.params).map_err(|e| RunError::Step(format!("parameters: {e}")))
}

/// A run's cluster name (runs only hold configured, valid names).
pub(crate) fn cluster_name(cluster: &str) -> Result<ClusterName, RunError> {
    ClusterName::parse(cluster).map_err(|_| RunError::UnknownCluster(cluster.to_owned()))
}

/// The step executor of a run's workflow.
enum Context {
    Cni(Box<cni::StepContext>),
    Drain(Box<drain::DrainContext>),
    Reset(Box<reset::ResetContext>),
    Recover(Box<recover::RecoveryContext>),
}

impl Context {
    async fn load(
        runs: &Runs,
        run: &RunRow,
        workflow: Workflow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        Ok(match workflow {
            Workflow::NodeDrain => Self::Drain(Box::new(
                drain::DrainContext::load(runs, run, cancel).await?,
            )),
            Workflow::NodeReset => {
                Self::Reset(Box::new(reset::ResetContext::load(runs, run, cancel)?))
            }
            Workflow::ApiserverRecover => {
                Self::Recover(Box::new(recover::RecoveryContext::load(runs, run, cancel)?))
            }
            _ => Self::Cni(Box::new(cni::StepContext::load(runs, run, cancel).await?)),
        })
    }

    async fn run_step(&mut self, workflow: Workflow, idx: i64, name: &str) -> Result<(), RunError> {
        match self {
            Self::Cni(c) => c.run_step(workflow, idx, name).await,
            Self::Drain(d) => d.run_step(idx, name).await,
            Self::Reset(r) => r.run_step(idx, name).await,
            Self::Recover(r) => r.run_step(idx, name).await,
        }
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

fn summary(run: &RunRow) -> RunSummaryView {
    let duration = run.finished_at.as_deref().and_then(|f| {
        let f = crate::time::Timestamp::parse(f).ok()?;
        let s = crate::time::Timestamp::parse(&run.started_at).ok()?;
        Some(f.unix_seconds() - s.unix_seconds())
    });
    RunSummaryView {
        id: run.id.0,
        cluster: run.cluster.clone(),
        workflow: run.workflow.clone(),
        title: run.title.clone(),
        actor: run.actor.clone(),
        status: run.status.as_str().to_owned(),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        duration_seconds: duration,
        manifest_source: run.manifest_source.clone(),
        manifest_sha256: run.manifest_sha256.clone(),
        error: run.error.clone(),
        warnings: run.warnings.clone(),
    }
}

fn step_view(s: &StepRow) -> StepView {
    StepView {
        name: s.name.clone(),
        status: s.status.as_str().to_owned(),
        started_at: s.started_at.clone(),
        finished_at: s.finished_at.clone(),
        output: s.output.clone(),
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

#[cfg(test)]
mod tests {
    use grappe_views::runs::{DrainNodeView, DrainOptions, PdbAtZeroView, PodVerdictView, Verdict};

    use super::*;

    fn drain_plan(phase: &str, healthy: i32, verdict: Verdict) -> PlanView {
        PlanView {
            cluster: "lab".into(),
            workflow: Workflow::NodeDrain.as_str().into(),
            title: "drain saiph".into(),
            manifest_source: None,
            manifest_sha256: None,
            verified: false,
            options: Vec::new(),
            objects: Vec::new(),
            checks: vec![check("pods", "pass", "1 pod(s) to remove")],
            drain: Some(DrainPreviewView {
                options: DrainOptions::default(),
                nodes: vec![DrainNodeView {
                    node: "saiph".into(),
                    status: "Ready".into(),
                    pods: vec![PodVerdictView {
                        namespace: "demo".into(),
                        name: "web-1".into(),
                        owner: "ReplicaSet/web-5d".into(),
                        phase: phase.into(),
                        verdict,
                        reason: String::new(),
                        blocking_pdbs: vec!["demo/web".into()],
                    }],
                }],
                pdbs_at_zero: vec![PdbAtZeroView {
                    namespace: "demo".into(),
                    name: "web".into(),
                    current_healthy: healthy,
                    desired_healthy: healthy,
                    pods: vec!["demo/web-1".into()],
                }],
            }),
            reset: None,
            recovery: None,
            hash: String::new(),
        }
    }

    #[test]
    fn a_drain_hash_ignores_live_figures_but_not_verdicts() {
        let planned = sealed(drain_plan("Pending", 2, Verdict::Evict));
        let started = sealed(drain_plan("Running", 3, Verdict::Evict));
        assert_eq!(planned.hash, started.hash);
        // What is shown keeps the live figures.
        assert_eq!(
            started
                .drain
                .as_ref()
                .map(|d| d.pdbs_at_zero[0].current_healthy),
            Some(3)
        );
        assert_ne!(
            planned.hash,
            sealed(drain_plan("Pending", 2, Verdict::Delete)).hash
        );
        let mut other_pod = drain_plan("Pending", 2, Verdict::Evict);
        if let Some(d) = other_pod.drain.as_mut() {
            d.nodes[0].pods[0].name = "web-2".into();
        }
        assert_ne!(planned.hash, sealed(other_pod).hash);
    }
}
