//! Workflow runs: the core every workflow runs on, and one folder per workflow.
//!
//! The core ([`lifecycle`], [`registry`], [`consent`], [`view`]) names no workflow. A run is a
//! persisted state machine in SQLite (run, steps, objects touched with their snapshots). Its
//! life:
//! - **start**: the workflow computes its plan again, which must have the hash the user
//!   confirmed, and hands the core a [`Launch`]; an audit record is written first (no record,
//!   no run); the run row is inserted (a unique index keeps one active run per cluster) and,
//!   when the workflow's [`Policy`] says so, the cluster's `grappe-workflow` Lease is taken
//!   (one run across Grappe instances); then a task drives it.
//! - **steps** run in order through the workflow's [`registry::Executor`]; each is audited
//!   before it starts and is idempotent: it looks at the cluster first, so a resumed run
//!   repeats a half-done step safely. Cancel is honoured between steps and inside waits.
//! - **crash**: at startup, runs left "running" become "interrupted" (nothing executes them any
//!   more); the user resumes one (from its first unfinished step) or abandons it.
//! - **end**: a digest over the run's rows goes into its final audit record, which the audit
//!   hash chain covers, so a changed run row is detectable ([`Runs::verify`]).
//!
//! The workflows: [`cni`] (install or upgrade, rollback, removal), [`drain`], [`reset`],
//! [`recover`]; [`kinds`] lists them for the core.

pub mod cni;
pub mod consent;
mod control;
pub mod drain;
mod drive;
mod failure;
pub mod k8s;
pub mod kinds;
pub mod lease;
mod lifecycle;
#[cfg(test)]
mod mock;
pub mod policy;
pub mod recover;
pub mod registry;
pub mod reset;
mod seal;
mod step;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::audit::{Action, AuditEntry, AuditError, AuditLog, Caller, Outcome, Target};
use crate::clusters::{ClusterError, Clusters};
use crate::manifests::{Fetcher, ManifestError, Source};
use crate::names::ClusterName;
use crate::state::ClusterStates;
use crate::store::{Store, StoreError};

use crate::model::RunRow;
pub use crate::model::{RunId, RunStatus, StepStatus, Workflow};
pub(crate) use consent::{check, sealed};
pub(crate) use failure::exit_text;
pub use failure::{CODES as FAILURE_CODES, Failure};
pub use lifecycle::{Launch, Start};
pub use policy::{Actor, Control};
pub use registry::{Policy, Registry};
pub use view::write_csv;

/// The code of every refusal ([`RunError::code`]); a step's failures have theirs
/// ([`FAILURE_CODES`]). The pages translate each.
pub const REFUSAL_CODES: &[&str] = &[
    "run.busy",
    "run.plan_changed",
    "run.not_independent",
    "run.password_needed",
    "run.check_failed",
    "run.not_confirmed",
    "run.wrong_status",
    "run.not_rollbackable",
    "run.lease_held",
];

/// Errors of runs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unknown cluster {0}")]
    UnknownCluster(String),
    #[error("no run {0}")]
    UnknownRun(RunId),
    /// A run of a workflow this build does not run (a database of another version).
    #[error("this version of Grappe does not run {0}")]
    UnknownWorkflow(Workflow),
    /// A request that does not fit its workflow (what does not fit, safe to show).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A plan or a confirmation that cannot be written as JSON (never expected).
    #[error("cannot encode a run's record")]
    Encode(#[source] serde_json::Error),
    #[error("cluster {cluster} is busy: run {} ({}) by {} is {}", .active.id, .active.workflow, .active.actor, .active.status.as_str())]
    Busy {
        cluster: String,
        active: crate::model::ActiveRun,
    },
    #[error(transparent)]
    LeaseHeld(#[from] lease::LeaseError),
    #[error("the cluster changed since the plan was made: plan again")]
    PlanChanged,
    #[error("a preflight check failed: {0}")]
    ChecksFailed(String),
    #[error("not allowed: to {what} this run needs the {needed} role")]
    Forbidden {
        what: &'static str,
        needed: &'static str,
    },
    #[error("type {0:?} to confirm")]
    NotConfirmed(String),
    #[error("enter your password again to {0} this run")]
    PasswordNeeded(&'static str),
    /// The two-person rule needs a second admin independent of the run's actor.
    #[error("{approver} cannot approve this run: {why}")]
    NotIndependent { approver: String, why: String },
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
    /// A step failed: a code the pages translate and the English text.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// A node the cluster does not have.
    #[error("node {node} does not exist in cluster {cluster}")]
    UnknownNode { node: String, cluster: String },
    /// A stored run this build cannot read (its parameters, a step's name): never expected
    /// of a run it started itself.
    #[error("a stored run cannot be read: {0}")]
    Corrupt(String),
    /// A node host could not be reached or refused (resets, recovery).
    #[error("SSH")]
    Ssh(#[from] crate::ssh::SshError),
}

impl From<crate::audit::GuardedError<RunError>> for RunError {
    fn from(e: crate::audit::GuardedError<RunError>) -> Self {
        match e {
            crate::audit::GuardedError::AuditUnavailable(a) => Self::AuditUnavailable(a),
            crate::audit::GuardedError::Action(e) => e,
        }
    }
}

impl RunError {
    /// The record of a run that ended with this error: its English text (with its causes: an
    /// API error's message is what the user needs) and its code when it has one.
    #[must_use]
    pub fn failure(&self) -> crate::model::RunFailure {
        crate::model::RunFailure {
            text: self.to_string(),
            code: self.code(),
        }
    }

    /// What a user is told, as a code and its parameters that the UI translates (the English
    /// `Display` text is the fallback); `None` for errors that are not a refusal the user can
    /// act on (the store, the audit log, a cluster's API, SSH: their cause chain is shown).
    #[must_use]
    pub fn code(&self) -> Option<(&'static str, Vec<(&'static str, String)>)> {
        Some(match self {
            Self::Busy { cluster, active } => (
                "run.busy",
                vec![
                    ("cluster", cluster.clone()),
                    ("run", active.id.to_string()),
                    ("workflow", active.workflow.to_string()),
                    ("actor", active.actor.clone()),
                    ("status", active.status.to_string()),
                ],
            ),
            Self::PlanChanged => ("run.plan_changed", Vec::new()),
            Self::NotIndependent { approver, why } => (
                "run.not_independent",
                vec![("approver", approver.clone()), ("why", why.clone())],
            ),
            Self::PasswordNeeded(what) => {
                ("run.password_needed", vec![("what", (*what).to_owned())])
            }
            Self::ChecksFailed(message) => ("run.check_failed", vec![("message", message.clone())]),
            Self::NotConfirmed(expected) => {
                ("run.not_confirmed", vec![("expected", expected.clone())])
            }
            Self::WrongStatus {
                id,
                status,
                expected,
            } => (
                "run.wrong_status",
                vec![
                    ("run", id.to_string()),
                    ("status", (*status).to_owned()),
                    ("expected", (*expected).to_owned()),
                ],
            ),
            Self::NotRollbackable(id, why) => (
                "run.not_rollbackable",
                vec![("run", id.to_string()), ("why", why.clone())],
            ),
            Self::LeaseHeld(lease::LeaseError::Held { holder }) => {
                ("run.lease_held", vec![("holder", holder.clone())])
            }
            Self::Failed(failure) => failure.code(),
            _ => return None,
        })
    }
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
    /// The workflows this engine runs.
    pub registry: Registry,
}

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
    /// The workflows ([`kinds::registry`]).
    pub registry: Registry,
}

impl Runs {
    /// Prepares the service and marks runs left "running" by a previous process "interrupted".
    ///
    /// # Errors
    /// [`RunError::Store`] when the database cannot be updated.
    pub async fn open(
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
            registry,
        } = services;
        let interrupted = if recover {
            store.interrupt_running_runs().await?
        } else {
            Vec::new()
        };
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "grappe".into());
        let db = hex::encode(&Sha256::digest(database.to_string_lossy().as_bytes())[..4]);
        let runs = Self {
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
                registry,
            }),
        };
        if recover {
            runs.recover(&interrupted).await;
        }
        Ok(runs)
    }

    /// At startup, what a previous process left: each run it left running is recorded as
    /// interrupted (`run.interrupt`: its last step's `attempted` record has no outcome, and
    /// this says why), and each run it ended without sealing is sealed now.
    async fn recover(&self, interrupted: &[RunId]) {
        let system = Caller::system();
        for id in interrupted {
            tracing::warn!(
                run = id.0,
                "run was left running by a previous process: now interrupted"
            );
            let Ok(Some(run)) = self.inner.store.run(*id).await else {
                continue;
            };
            let entry = AuditEntry::new(
                &system,
                Action::RunInterrupt,
                lifecycle::run_target(&run),
                Outcome::Failure,
            )
            .detail("workflow", run.workflow.as_str())
            .detail("why", "the process that ran it stopped");
            if let Err(e) = self.inner.audit.append(entry).await {
                tracing::error!(run = id.0, error = %crate::audit::error_chain(&e), "could not record an interrupted run");
            }
        }
        match self.inner.store.unsealed_finished_runs().await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(run = id.0, "run ended without its seal: sealing it now");
                    self.seal(id, &system).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::audit::error_chain(&e), "could not look for unsealed runs")
            }
        }
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

    /// The kube client of `cluster`; a cluster that is not configured is
    /// [`RunError::UnknownCluster`] (a 404 for the pages), whatever the caller.
    pub(crate) async fn client_of(&self, cluster: &ClusterName) -> Result<kube::Client, RunError> {
        match self.inner.clusters.client(cluster).await {
            Err(ClusterError::Unknown(c)) => Err(RunError::UnknownCluster(c)),
            other => Ok(other?),
        }
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

    async fn load(&self, id: RunId) -> Result<RunRow, RunError> {
        self.inner
            .store
            .run(id)
            .await?
            .ok_or(RunError::UnknownRun(id))
    }
}

/// A run's parameters, as its start stored them.
pub(crate) fn run_params<T: serde::de::DeserializeOwned>(run: &RunRow) -> Result<T, RunError> {
    serde_json::from_str(&run.params)
        .map_err(|e| RunError::Corrupt(format!("parameters of run {}: {e}", run.id)))
}
