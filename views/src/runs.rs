//! Workflow runs as the pages show them: a plan before anything changes, then the run with its
//! steps and the objects it touched.

use serde::{Deserialize, Serialize};

pub use crate::vocab::{Level, Planned, RunStatus, StepStatus, Verdict, Workflow};

mod active;
pub use active::ActiveRunView;

/// One changed field: a JSON pointer and its values (shortened for display).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One object of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedObjectView {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub action: Planned,
    /// Field-level changes of an update (at most 50 shown) and how many there are.
    pub changes: Vec<FieldChange>,
    pub changes_total: usize,
}

/// A preflight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckView {
    pub id: String,
    /// A failed check blocks the run.
    pub level: Level,
    pub message: String,
}

/// What a plan shows besides its objects and checks: the workflow's own preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "preview", rename_all = "snake_case")]
pub enum PlanDetail {
    /// The manifest workflows: their objects are the preview.
    #[default]
    Objects,
    Drain(DrainPreviewView),
    Reset(ResetPreviewView),
    Recovery(RecoveryPreviewView),
}

/// A plan as the pages show it: computed by the engine from the plan it seals and stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub cluster: String,
    pub workflow: Workflow,
    /// What the plan is for, e.g. `Calico v3.25.1` or `rollback of run 12`.
    pub title: String,
    pub manifest_source: Option<String>,
    pub manifest_sha256: Option<String>,
    /// The manifest matched its catalog checksum.
    pub verified: bool,
    /// Options as recorded (e.g. CALICO_IPV4POOL_CIDR).
    pub options: Vec<(String, String)>,
    pub objects: Vec<PlannedObjectView>,
    pub checks: Vec<CheckView>,
    pub detail: PlanDetail,
    /// What the user types to confirm (the cluster's name, a drain's nodes, ...).
    pub confirm_word: String,
    /// The request the plan was made from (JSON): a start sends it back with the hash, and the
    /// engine plans again from it.
    pub request: String,
    pub hash: String,
}

impl PlanView {
    /// Whether no check failed.
    pub fn runnable(&self) -> bool {
        self.checks.iter().all(|c| c.level != Level::Fail)
    }

    /// Count of objects per action.
    pub fn count(&self, action: Planned) -> usize {
        self.objects.iter().filter(|o| o.action == action).count()
    }

    /// A drain's preview, if this is a drain's plan.
    pub fn drain(&self) -> Option<&DrainPreviewView> {
        match &self.detail {
            PlanDetail::Drain(d) => Some(d),
            _ => None,
        }
    }

    /// A reset's preview, if this is a reset's plan.
    pub fn reset(&self) -> Option<&ResetPreviewView> {
        match &self.detail {
            PlanDetail::Reset(r) => Some(r),
            _ => None,
        }
    }

    /// A recovery's preview, if this is a recovery's plan.
    pub fn recovery(&self) -> Option<&RecoveryPreviewView> {
        match &self.detail {
            PlanDetail::Recovery(r) => Some(r),
            _ => None,
        }
    }
}

/// The drain's options, kubectl's flags. The default is the seed's command:
/// `kubectl drain <node> --delete-emptydir-data --ignore-daemonsets --force`, with a
/// 10-minute timeout instead of kubectl's "forever".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainOptions {
    /// `--delete-emptydir-data`
    pub delete_emptydir_data: bool,
    /// `--ignore-daemonsets`
    pub ignore_daemonsets: bool,
    /// `--force`: pods without a controller are deleted too.
    pub force: bool,
    /// `--grace-period`; `None` is each pod's own (kubectl's -1).
    pub grace_period_seconds: Option<u32>,
    /// `--timeout`, per node.
    pub timeout_seconds: u64,
    /// `--pod-selector` (a label selector; empty: every pod).
    pub pod_selector: String,
    /// `--skip-wait-for-delete-timeout`; 0: off.
    pub skip_wait_for_delete_timeout_seconds: u64,
    /// `--disable-eviction`: DELETE instead of the Eviction API, bypassing
    /// PodDisruptionBudgets (admin only).
    pub disable_eviction: bool,
    /// Evictions in flight at once (kubectl: one goroutine per pod, unbounded).
    pub concurrency: usize,
}

impl Default for DrainOptions {
    fn default() -> Self {
        Self {
            delete_emptydir_data: true,
            ignore_daemonsets: true,
            force: true,
            grace_period_seconds: None,
            timeout_seconds: 600,
            pod_selector: String::new(),
            skip_wait_for_delete_timeout_seconds: 0,
            disable_eviction: false,
            concurrency: 32,
        }
    }
}

impl DrainOptions {
    /// The equivalent kubectl flags, as recorded in the plan.
    pub fn flags(&self) -> Vec<(String, String)> {
        let mut f = vec![
            (
                "--delete-emptydir-data".to_owned(),
                self.delete_emptydir_data.to_string(),
            ),
            (
                "--ignore-daemonsets".to_owned(),
                self.ignore_daemonsets.to_string(),
            ),
            ("--force".to_owned(), self.force.to_string()),
            (
                "--grace-period".to_owned(),
                self.grace_period_seconds
                    .map_or("-1".to_owned(), |g| g.to_string()),
            ),
            ("--timeout".to_owned(), format!("{}s", self.timeout_seconds)),
        ];
        if !self.pod_selector.trim().is_empty() {
            f.push((
                "--pod-selector".to_owned(),
                self.pod_selector.trim().to_owned(),
            ));
        }
        if self.skip_wait_for_delete_timeout_seconds > 0 {
            f.push((
                "--skip-wait-for-delete-timeout".to_owned(),
                self.skip_wait_for_delete_timeout_seconds.to_string(),
            ));
        }
        if self.disable_eviction {
            f.push(("--disable-eviction".to_owned(), "true".to_owned()));
        }
        f.push(("concurrency".to_owned(), self.concurrency.to_string()));
        f
    }
}

/// One pod of a drain preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodVerdictView {
    pub namespace: String,
    pub name: String,
    /// `Kind/name` of its controller, empty without one.
    pub owner: String,
    pub phase: String,
    pub verdict: Verdict,
    /// Why (kubectl's words), empty for a plain eviction.
    pub reason: String,
    /// PodDisruptionBudgets covering the pod that allow no disruption now (`namespace/name`).
    pub blocking_pdbs: Vec<String>,
}

impl PodVerdictView {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One node of a drain preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainNodeView {
    pub node: String,
    /// As `kubectl get nodes` shows it (`Ready,SchedulingDisabled`).
    pub status: String,
    pub pods: Vec<PodVerdictView>,
}

/// A PodDisruptionBudget that allows no disruption now, with the pods of the drain it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdbAtZeroView {
    pub namespace: String,
    pub name: String,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub pods: Vec<String>,
}

/// A drain's preview: every pod on the nodes with its verdict, and the budgets at zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainPreviewView {
    /// The options it was made with (a start sends them back; the hash covers them).
    pub options: DrainOptions,
    pub nodes: Vec<DrainNodeView>,
    pub pdbs_at_zero: Vec<PdbAtZeroView>,
}

impl DrainPreviewView {
    /// The preview as its plan's hash covers it: the live figures that move on their own
    /// between a preview and its start (a pod's phase, a budget's healthy counts) are shown,
    /// not hashed; the pods, their verdicts and the budgets that block them are.
    #[must_use]
    pub fn without_live_figures(&self) -> Self {
        let mut d = self.clone();
        for pod in d.nodes.iter_mut().flat_map(|n| n.pods.iter_mut()) {
            pod.phase.clear();
        }
        for b in &mut d.pdbs_at_zero {
            (b.current_healthy, b.desired_healthy) = (0, 0);
        }
        d
    }

    /// How many pods have `verdict`, over all nodes.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.pods)
            .filter(|p| p.verdict == verdict)
            .count()
    }
}

/// A run in the history list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummaryView {
    pub id: i64,
    pub cluster: String,
    pub workflow: Workflow,
    pub title: String,
    pub actor: String,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<i64>,
    pub manifest_source: Option<String>,
    pub manifest_sha256: Option<String>,
    /// Why it failed, in English (the fallback).
    pub error: Option<String>,
    /// Why it failed, as a code and parameters the page translates.
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_params: Vec<(String, String)>,
    /// Warnings of a finished run (kubeadm's, for a reset): a succeeded run with warnings is
    /// "completed with warnings", never plain success.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl RunSummaryView {
    /// A run just started: running, nothing recorded of its end yet.
    #[must_use]
    pub fn started(
        id: i64,
        cluster: &str,
        workflow: Workflow,
        title: &str,
        actor: &str,
        started_at: &str,
    ) -> Self {
        Self {
            id,
            cluster: cluster.to_owned(),
            workflow,
            title: title.to_owned(),
            actor: actor.to_owned(),
            status: RunStatus::Running,
            started_at: started_at.to_owned(),
            finished_at: None,
            duration_seconds: None,
            manifest_source: None,
            manifest_sha256: None,
            error: None,
            error_code: None,
            error_params: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The status as shown: `succeeded` becomes `completed with warnings` when there are any.
    pub fn shown_status(&self) -> &str {
        if self.status == RunStatus::Succeeded && !self.warnings.is_empty() {
            "completed with warnings"
        } else {
            self.status.as_str()
        }
    }
}

/// What a node reset does besides kubeadm reset, the CNI configuration, iptables and IPVS
/// (always done). Admin only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetOptions {
    /// `rm -f $HOME/.kube/config`.
    pub remove_kubeconfig: bool,
    /// `rm -rf /var/lib/cni` (the CNI plugins' IPAM state).
    pub remove_cni_state: bool,
    /// Delete the Node object afterwards.
    pub delete_node: bool,
    /// Allow the control-plane node: the cluster itself is reset (stronger confirmation).
    pub reset_cluster: bool,
}

/// A node reset's preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetPreviewView {
    pub node: String,
    /// `user@address:port`.
    pub endpoint: String,
    /// The pinned host key's fingerprint (the run uses only this key).
    pub host_key: String,
    pub control_plane: bool,
    /// The node's status (`Ready`, `NotReady,SchedulingDisabled`, ...).
    pub node_status: String,
    /// A drain runs first (the node is Ready and schedulable).
    pub drain_first: bool,
    pub options: ResetOptions,
    /// A second admin must approve before anything runs (two-person rule).
    pub approval: bool,
}

/// A control-plane host a recovery works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryHostView {
    pub node: String,
    /// `user@address:port`.
    pub endpoint: String,
    /// The pinned host key's fingerprint (empty: none, the plan fails).
    pub host_key: String,
}

/// A kube-apiserver recovery's preview: the seed's troubleshooting over SSH only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPreviewView {
    // What the API server answers (or not) changes from one probe to the next: the overview's
    // banner shows it, the plan (whose hash the admin confirms) does not.
    pub hosts: Vec<RecoveryHostView>,
    /// The most recent CNI install on the cluster: what the recovery offers to roll back once
    /// the API server answers.
    pub rollback_run: Option<i64>,
    pub rollback_title: Option<String>,
    /// The run rolls that install back itself, after the restart (a started recovery whose
    /// admin left "then roll back" ticked); otherwise its page offers the rollback.
    #[serde(default)]
    pub rollback_included: bool,
    /// How long the run waits for `/readyz`.
    pub ready_timeout_seconds: u64,
}

/// A step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    pub name: String,
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub output: String,
    /// How far it is, while it waits on something it can count.
    #[serde(default)]
    pub progress: Option<StepProgress>,
}

/// What a step counts while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgressUnit {
    /// Nodes Ready (a CNI rollout).
    #[default]
    NodesReady,
    /// Pods evicted and gone (a drain).
    PodsGone,
    /// Nodes served by the operator's calico-node (a migration to the operator).
    NodesMoved,
}

impl ProgressUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodesReady => "nodes-ready",
            Self::PodsGone => "pods-gone",
            Self::NodesMoved => "nodes-moved",
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Option<Self> {
        [Self::NodesReady, Self::PodsGone, Self::NodesMoved]
            .into_iter()
            .find(|u| u.as_str() == text)
    }
}

/// How far a step is: `done` of `total` `unit`, and what holds it (a budget), if anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProgress {
    pub done: u64,
    pub total: u64,
    pub unit: ProgressUnit,
    /// What holds the rest back, named (`PodDisruptionBudget default/web`).
    pub note: Option<String>,
    /// A CNI rollout's pods updated of those desired (its DaemonSets' and Deployments').
    #[serde(default)]
    pub updated: Option<Tally>,
}

/// `done` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub done: u64,
    pub total: u64,
}

/// An object a run touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunObjectView {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub planned: Planned,
    /// Whether the object existed before the run (a snapshot was taken).
    pub existed: Option<bool>,
    pub done: Option<String>,
}

/// What the reader of a run may do to it now, as the engine's policy answers for the reader's
/// role (the page shows only these controls; the server checks again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCapabilities {
    pub cancel: bool,
    pub resume: bool,
    /// Resuming asks for the password again.
    pub resume_password: bool,
    pub abandon: bool,
    pub roll_back: bool,
    /// Approve a run that waits for a second admin (not its own actor).
    pub approve: bool,
    /// The run waits for a second admin's approval (whoever reads it).
    pub awaiting_approval: bool,
}

/// A run with everything recorded about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    pub summary: RunSummaryView,
    pub plan: PlanView,
    pub confirmation: String,
    pub steps: Vec<StepView>,
    pub objects: Vec<RunObjectView>,
    pub cancel_requested: bool,
    /// Runs that can be rolled back (install, upgrade, remove) once finished.
    pub can_roll_back: bool,
    pub digest: Option<String>,
    /// What the reader may do to it (none unless asked as someone, [`RunCapabilities`]).
    #[serde(default)]
    pub may: RunCapabilities,
}
