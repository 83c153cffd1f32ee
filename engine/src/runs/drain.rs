//! Cordon, uncordon and drain with `kubectl drain`'s semantics (k8s.io/kubectl/pkg/drain):
//! the same pod filters in the same order, the Eviction API with a 5 s retry on 429, waiting
//! until each pod is gone or replaced. What Grappe adds: a preview of every pod's verdict and
//! of the PodDisruptionBudgets at zero before anything happens, bounded concurrency, a timeout
//! by default, the blocking budget named while it blocks, per-pod status in the run's record,
//! and cancel (the node stays cordoned).
//!
//! A drain is a run (`node.drain`): per node a `cordon <node>` step and a `drain <node>` step,
//! nodes one after another, stopping at the first failure. Both steps look at the cluster
//! first, so a resumed run repeats them safely.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use grappe_views::runs::{
    DrainNodeView, DrainPreviewView, PdbAtZeroView, PlanView, Planned, PlannedObjectView,
    PodVerdictView, Verdict,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::k8s::KubeError;
use super::{Confirmation, RunError, RunId, Runs, Workflow, check, cluster_name, sealed};
use crate::audit::{Action, AuditEntry, Caller, GuardedError, Target};
use crate::names::NodeName;
use crate::state::ClusterState;
use crate::state::model::NodeInfo;
use crate::store::runs::{ObjectRow, RunRow};

/// kubectl's wait between two evictions refused with 429 (no Retry-After is sent).
const RETRY_AFTER_429: Duration = Duration::from_secs(5);
/// Upper bound of the concurrency option.
pub const MAX_CONCURRENCY: usize = 256;
/// Upper bound of the timeout option (one day).
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
/// How often the wait for gone pods looks again without a live state.
const POLL: Duration = Duration::from_secs(1);
/// Pods per LIST page, as kubectl.
const LIST_CHUNK: u32 = 500;

pub use grappe_views::runs::DrainOptions;

/// Checks the options' ranges and that the pod selector is a label selector.
///
/// # Errors
/// [`RunError::Drain`] naming the option out of range.
pub fn validate(opts: &DrainOptions) -> Result<(), RunError> {
    if opts.concurrency == 0 || opts.concurrency > MAX_CONCURRENCY {
        return Err(RunError::Drain(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    if opts.timeout_seconds == 0 || opts.timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(RunError::Drain(format!(
            "timeout must be between 1 s and {MAX_TIMEOUT_SECONDS} s"
        )));
    }
    if opts
        .grace_period_seconds
        .is_some_and(|g| u64::from(g) > MAX_TIMEOUT_SECONDS)
    {
        return Err(RunError::Drain("grace period too long".into()));
    }
    if opts.skip_wait_for_delete_timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(RunError::Drain(
            "skip-wait-for-delete timeout too long".into(),
        ));
    }
    let selector = opts.pod_selector.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./=!,() ".contains(c);
    if selector.len() > 1024 || !selector.chars().all(allowed) {
        return Err(RunError::Drain(format!(
            "pod selector {:?} is not a label selector",
            crate::names::sanitize_for_display(selector, 80)
        )));
    }
    Ok(())
}

/// A drain run's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainParams {
    pub nodes: Vec<NodeName>,
    pub options: DrainOptions,
}

/// kubectl's reasons, word for word where kubectl has them.
const DAEMONSET_FATAL: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMONSET_SKIP: &str = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL: &str =
    "Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
const UNMANAGED_FATAL: &str = "Pods declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";
const MIRROR_SKIP: &str = "mirror pod (static pod of the kubelet)";
const ORPHAN_WARNING: &str = "deleting orphaned DaemonSet pod";

/// What is known about a DaemonSet that controls a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonSetLookup {
    Exists,
    NotFound,
    /// Another error, in kubectl's words.
    Error(String),
}

/// A pod's verdict and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVerdict {
    pub verdict: Verdict,
    /// kubectl's reason (blocked, skipped) or warning (removed), empty for a plain removal.
    pub reason: String,
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn controller(pod: &Pod) -> Option<(&str, &str)> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.as_str(), o.name.as_str()))
}

/// The verdict of one pod, by kubectl's filters in kubectl's order (the first that does not
/// remove the pod decides): terminating past the skip timeout, DaemonSet, mirror pod, local
/// storage, no controller. `ds` tells whether a pod's DaemonSet exists; `now` is in Unix
/// seconds.
pub fn verdict(
    pod: &Pod,
    opts: &DrainOptions,
    now: i64,
    ds: &dyn Fn(&str, &str) -> DaemonSetLookup,
) -> PodVerdict {
    let blocked = |reason: &str| PodVerdict {
        verdict: Verdict::Blocked,
        reason: reason.to_owned(),
    };
    let skip = |reason: &str| PodVerdict {
        verdict: Verdict::Skip,
        reason: reason.to_owned(),
    };
    let remove = if opts.disable_eviction {
        Verdict::Delete
    } else {
        Verdict::Evict
    };
    let mut warning = String::new();
    // 1. Terminating for longer than --skip-wait-for-delete-timeout.
    if opts.skip_wait_for_delete_timeout_seconds > 0
        && let Some(deleted) = &pod.metadata.deletion_timestamp
    {
        let for_seconds = now - deleted.0.as_second();
        if for_seconds > i64::try_from(opts.skip_wait_for_delete_timeout_seconds).unwrap_or(0) {
            return skip(&format!("terminating for {for_seconds} s"));
        }
    }
    let done = finished(pod);
    // 2. DaemonSet-managed pods: never removed, unless orphaned and forced.
    if let Some(("DaemonSet", name)) = controller(pod)
        && !done
    {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        match ds(ns, name) {
            DaemonSetLookup::NotFound if opts.force => warning = ORPHAN_WARNING.to_owned(),
            DaemonSetLookup::NotFound => {
                return blocked(&format!("daemonsets.apps {name:?} not found"));
            }
            DaemonSetLookup::Error(e) => return blocked(&e),
            DaemonSetLookup::Exists if !opts.ignore_daemonsets => return blocked(DAEMONSET_FATAL),
            DaemonSetLookup::Exists => return skip(DAEMONSET_SKIP),
        }
    }
    // 3. Mirror pods: the kubelet owns them.
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        return skip(MIRROR_SKIP);
    }
    // 4. Local storage (emptyDir).
    let empty_dir = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
    if empty_dir && !done {
        if !opts.delete_emptydir_data {
            return blocked(LOCAL_STORAGE_FATAL);
        }
        warning = LOCAL_STORAGE_WARNING.to_owned();
    }
    // 5. No controller.
    if !done && controller(pod).is_none() {
        if !opts.force {
            return blocked(UNMANAGED_FATAL);
        }
        warning = UNMANAGED_WARNING.to_owned();
    }
    PodVerdict {
        verdict: remove,
        reason: warning,
    }
}

/// Whether a label selector selects `labels` (matchLabels and matchExpressions; an empty
/// selector selects everything, as for a PodDisruptionBudget in policy/v1).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let by_expressions = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

/// The PodDisruptionBudgets that cover a pod (same namespace, selector matches).
fn covering<'a>(pdbs: &'a [PodDisruptionBudget], pod: &Pod) -> Vec<&'a PodDisruptionBudget> {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    pdbs.iter()
        .filter(|p| p.metadata.namespace == pod.metadata.namespace)
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| selects(s, labels))
        })
        .collect()
}

fn allowed(pdb: &PodDisruptionBudget) -> i32 {
    pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed)
}

fn pdb_key(pdb: &PodDisruptionBudget) -> String {
    format!(
        "{}/{}",
        pdb.metadata.namespace.as_deref().unwrap_or_default(),
        pdb.metadata.name.as_deref().unwrap_or_default()
    )
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

pub(crate) fn call(
    verb: &'static str,
    object: impl Into<String>,
) -> impl FnOnce(kube::Error) -> RunError {
    let object = object.into();
    move |source| {
        RunError::Kube(KubeError::Call {
            verb,
            object,
            source,
        })
    }
}

/// Every pod on `node` (selected by `selector`), in pages of 500 as kubectl lists them.
async fn pods_on(client: &Client, node: &str, selector: &str) -> Result<Vec<Pod>, RunError> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut lp = ListParams::default()
        .fields(&format!("spec.nodeName={node}"))
        .limit(LIST_CHUNK);
    if !selector.trim().is_empty() {
        lp = lp.labels(selector.trim());
    }
    let mut pods = Vec::new();
    loop {
        let page = api
            .list(&lp)
            .await
            .map_err(call("list", format!("pods on node {node}")))?;
        pods.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
    pods.sort_by_key(pod_key);
    Ok(pods)
}

/// Every PodDisruptionBudget of the cluster (a drain lists them once).
async fn budgets(client: &Client) -> Result<Vec<PodDisruptionBudget>, RunError> {
    Ok(Api::<PodDisruptionBudget>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(call("list", "poddisruptionbudgets"))?
        .items)
}

/// Looks up the DaemonSets that control `pods` (once each).
async fn daemonsets(client: &Client, pods: &[Pod]) -> HashMap<(String, String), DaemonSetLookup> {
    let mut wanted = BTreeSet::new();
    for pod in pods {
        if let Some(("DaemonSet", name)) = controller(pod) {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            wanted.insert((ns, name.to_owned()));
        }
    }
    let mut found = HashMap::new();
    for (ns, name) in wanted {
        let api: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
        let lookup = match api.get_opt(&name).await {
            Ok(Some(_)) => DaemonSetLookup::Exists,
            Ok(None) => DaemonSetLookup::NotFound,
            Err(e) => DaemonSetLookup::Error(e.to_string()),
        };
        found.insert((ns, name), lookup);
    }
    found
}

/// Every pod of `pods` with its verdict.
async fn judge(client: &Client, pods: &[Pod], opts: &DrainOptions) -> Vec<PodVerdict> {
    let ds = daemonsets(client, pods).await;
    let now = crate::time::now().unix_seconds();
    let lookup = |ns: &str, name: &str| {
        ds.get(&(ns.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or(DaemonSetLookup::Exists)
    };
    pods.iter()
        .map(|p| verdict(p, opts, now, &lookup))
        .collect()
}

/// kubectl's error for blocked pods: `cannot delete <reason>: ns/a, ns/b` per reason.
fn blocked_error(pods: &[Pod], verdicts: &[PodVerdict]) -> Option<String> {
    let mut by_reason: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (pod, v) in pods.iter().zip(verdicts) {
        if v.verdict == Verdict::Blocked {
            by_reason.entry(&v.reason).or_default().push(pod_key(pod));
        }
    }
    (!by_reason.is_empty()).then(|| {
        by_reason
            .iter()
            .map(|(reason, pods)| format!("cannot delete {reason}: {}", pods.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

pub(crate) fn node_name(name: &str) -> Result<NodeName, RunError> {
    NodeName::parse(name).map_err(|e| RunError::Drain(e.to_string()))
}

impl Runs {
    /// Cordons (`unschedulable`) or uncordons a node. The audit record is written first;
    /// nothing changes without it. Returns whether the node changed.
    ///
    /// # Errors
    /// [`RunError::AuditUnavailable`], an invalid node name, API errors.
    pub async fn set_unschedulable(
        &self,
        caller: &Caller,
        cluster: &str,
        node: &str,
        unschedulable: bool,
    ) -> Result<bool, RunError> {
        let node = node_name(node)?;
        let client = self.client_of(cluster).await?;
        let action = if unschedulable {
            Action::NodeCordon
        } else {
            Action::NodeUncordon
        };
        let entry = AuditEntry::new(
            caller,
            action,
            Target {
                cluster: Some(cluster.to_owned()),
                node: Some(node.to_string()),
                object: None,
            },
            crate::audit::Outcome::Attempted,
        );
        let result = self
            .inner()
            .audit
            .guarded(entry, patch_unschedulable(&client, &node, unschedulable))
            .await;
        match result {
            Ok(changed) => Ok(changed),
            Err(GuardedError::AuditUnavailable(e)) => Err(RunError::AuditUnavailable(e)),
            Err(GuardedError::Action(e)) => Err(e),
        }
    }

    /// Previews a drain of `nodes` without changing anything: every pod with its verdict,
    /// the PodDisruptionBudgets at zero and the pods they cover, and the checks (blocked pods
    /// fail it, as kubectl stops before evicting anything).
    ///
    /// # Errors
    /// Invalid options or node names, an unknown cluster, API errors.
    pub async fn plan_drain(
        &self,
        cluster: &str,
        nodes: &[String],
        opts: &DrainOptions,
    ) -> Result<PlanView, RunError> {
        validate(opts)?;
        if nodes.is_empty() {
            return Err(RunError::Drain("no node to drain".into()));
        }
        let mut names = Vec::new();
        for n in nodes {
            let n = node_name(n.trim())?;
            if names.contains(&n) {
                return Err(RunError::Drain(format!("node {n} is named twice")));
            }
            names.push(n);
        }
        let client = self.client_of(cluster).await?;
        let pdbs = budgets(&client).await?;
        let mut checks = Vec::new();
        let mut views = Vec::new();
        let mut objects = Vec::new();
        let mut at_zero: BTreeMap<String, (PodDisruptionBudget, Vec<String>)> = BTreeMap::new();
        let nodes_api: Api<Node> = Api::all(client.clone());
        for name in &names {
            let Some(node) = nodes_api
                .get_opt(name.as_str())
                .await
                .map_err(call("get", format!("node {name}")))?
            else {
                checks.push(check("node", "fail", format!("node {name} does not exist")));
                continue;
            };
            let info = NodeInfo::from_node(node);
            let status = info.as_ref().map(NodeInfo::status_text).unwrap_or_default();
            if info
                .as_ref()
                .is_some_and(|i| i.roles.iter().any(|r| r == "control-plane"))
            {
                checks.push(check(
                    "control-plane",
                    "warn",
                    format!("{name} is a control-plane node: its static pods stay (mirror pods are skipped)"),
                ));
            }
            let pods = pods_on(&client, name.as_str(), &opts.pod_selector).await?;
            let verdicts = judge(&client, &pods, opts).await;
            if let Some(err) = blocked_error(&pods, &verdicts) {
                checks.push(check(
                    "blocked",
                    "fail",
                    format!(
                        "{name}: {err}. Nothing would be evicted; change the options or the pods."
                    ),
                ));
            }
            let mut pod_views = Vec::new();
            for (pod, v) in pods.iter().zip(verdicts) {
                let mut blocking = Vec::new();
                if v.verdict == Verdict::Evict {
                    for pdb in covering(&pdbs, pod) {
                        if allowed(pdb) <= 0 {
                            blocking.push(pdb_key(pdb));
                            at_zero
                                .entry(pdb_key(pdb))
                                .or_insert_with(|| (pdb.clone(), Vec::new()))
                                .1
                                .push(pod_key(pod));
                        }
                    }
                }
                if v.verdict.removes() {
                    objects.push(PlannedObjectView {
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        namespace: pod.metadata.namespace.clone(),
                        name: pod.metadata.name.clone().unwrap_or_default(),
                        action: Planned::Delete,
                        changes: Vec::new(),
                        changes_total: 0,
                    });
                }
                pod_views.push(PodVerdictView {
                    namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                    name: pod.metadata.name.clone().unwrap_or_default(),
                    owner: controller(pod)
                        .map(|(k, n)| format!("{k}/{n}"))
                        .unwrap_or_default(),
                    phase: pod
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_else(|| "Pending".into()),
                    verdict: v.verdict,
                    reason: v.reason,
                    blocking_pdbs: blocking,
                });
            }
            views.push(DrainNodeView {
                node: name.to_string(),
                status,
                pods: pod_views,
            });
        }
        if !at_zero.is_empty() {
            checks.push(check(
                "pdb",
                "warn",
                format!(
                    "{} PodDisruptionBudget(s) allow no disruption now: {}. Evictions they cover are retried every 5 s until they allow it or the timeout ({} s) ends the drain.",
                    at_zero.len(),
                    at_zero.keys().cloned().collect::<Vec<_>>().join(", "),
                    opts.timeout_seconds
                ),
            ));
        }
        if opts.disable_eviction {
            checks.push(check(
                "eviction",
                "warn",
                "eviction disabled: pods are deleted and PodDisruptionBudgets are bypassed",
            ));
        }
        if checks.iter().all(|c| c.level != "fail") {
            checks.push(check(
                "pods",
                "pass",
                format!("{} pod(s) to remove", objects.len()),
            ));
        }
        let pdbs_at_zero = at_zero
            .into_values()
            .map(|(p, pods)| {
                let status = p.status.unwrap_or_default();
                PdbAtZeroView {
                    namespace: p.metadata.namespace.unwrap_or_default(),
                    name: p.metadata.name.unwrap_or_default(),
                    current_healthy: status.current_healthy,
                    desired_healthy: status.desired_healthy,
                    pods,
                }
            })
            .collect();
        let node_list: Vec<String> = names.iter().map(ToString::to_string).collect();
        Ok(sealed(PlanView {
            cluster: cluster.to_owned(),
            workflow: Workflow::NodeDrain.as_str().to_owned(),
            title: format!("drain {}", node_list.join(", ")),
            manifest_source: None,
            manifest_sha256: None,
            verified: false,
            options: opts.flags(),
            objects,
            checks,
            drain: Some(DrainPreviewView {
                options: opts.clone(),
                nodes: views,
                pdbs_at_zero,
            }),
            reset: None,
            recovery: None,
            hash: String::new(),
        }))
    }

    /// Starts a previewed drain after the user confirmed `expected_hash` by typing the node
    /// names.
    ///
    /// # Errors
    /// As [`Runs::plan_drain`], plus confirmation, a changed preview, blocked pods, a busy
    /// cluster.
    pub async fn start_drain(
        &self,
        caller: &Caller,
        cluster: &str,
        nodes: &[String],
        opts: &DrainOptions,
        expected_hash: &str,
        confirmation: Confirmation,
    ) -> Result<RunId, RunError> {
        let plan = self.plan_drain(cluster, nodes, opts).await?;
        let names: Vec<NodeName> = nodes
            .iter()
            .map(|n| node_name(n.trim()))
            .collect::<Result<_, _>>()?;
        let steps = names
            .iter()
            .flat_map(|n| [format!("cordon {n}"), format!("drain {n}")])
            .collect();
        let params = serde_json::to_value(DrainParams {
            nodes: names,
            options: opts.clone(),
        })
        .map_err(|e| RunError::Step(e.to_string()))?;
        self.launch(caller, plan, expected_hash, confirmation, params, steps)
            .await
    }
}

async fn patch_unschedulable(
    client: &Client,
    node: &NodeName,
    unschedulable: bool,
) -> Result<bool, RunError> {
    let api: Api<Node> = Api::all(client.clone());
    let current = api
        .get(node.as_str())
        .await
        .map_err(call("get", format!("node {node}")))?;
    let now = current
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if now == unschedulable {
        return Ok(false);
    }
    let patch = json!({ "spec": { "unschedulable": unschedulable } });
    api.patch(
        node.as_str(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(call("patch", format!("node {node}")))?;
    Ok(true)
}

/// A pod the drain removes, and where its status goes.
#[derive(Debug, Clone)]
struct Removal {
    key: String,
    namespace: String,
    name: String,
    uid: String,
    /// Its row in the run's objects (pods planned in the preview).
    seq: Option<i64>,
    /// The budgets covering it (`namespace/name`), named when an eviction is refused.
    budgets: Vec<String>,
}

/// Executes a drain run's steps.
pub(crate) struct DrainContext {
    runs: Runs,
    run: RunRow,
    client: Client,
    params: DrainParams,
    state: Option<Arc<ClusterState>>,
    cancel: watch::Receiver<bool>,
    rows: Vec<ObjectRow>,
}

impl DrainContext {
    pub(crate) async fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let params: DrainParams = super::run_params(run)?;
        Self::with_params(runs, run, params, cancel).await
    }

    /// A drain inside another workflow (a node reset drains first).
    pub(crate) async fn with_params(
        runs: &Runs,
        run: &RunRow,
        params: DrainParams,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let client = runs.client_of(&run.cluster).await?;
        let name = cluster_name(&run.cluster)?;
        Ok(Self {
            runs: runs.clone(),
            run: run.clone(),
            client,
            params,
            state: runs.inner().states.get(&name),
            cancel,
            rows: runs.inner().store.run_objects(run.id).await?,
        })
    }

    pub(crate) async fn run_step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
        let node = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|n| self.params.nodes.iter().find(|x| x.as_str() == n))
                .cloned()
        };
        if let Some(n) = node("cordon ") {
            let changed = patch_unschedulable(&self.client, &n, true).await?;
            let line = if changed {
                format!("node/{n} cordoned")
            } else {
                format!("node/{n} already cordoned")
            };
            return self.say(idx, &line).await;
        }
        if let Some(n) = node("drain ") {
            let result = self.drain(idx, &n).await;
            if let Err(e) = &result {
                let rest: Vec<&str> = self
                    .params
                    .nodes
                    .iter()
                    .skip_while(|x| *x != &n)
                    .skip(1)
                    .map(NodeName::as_str)
                    .collect();
                let mut line = match e {
                    RunError::Kube(KubeError::Cancelled) => {
                        format!("cancelled: node/{n} stays cordoned (uncordon it from its page)")
                    }
                    _ => format!("node/{n} stays cordoned"),
                };
                if !rest.is_empty() {
                    line.push_str(&format!("; not drained: {}", rest.join(", ")));
                }
                self.say(idx, &line).await?;
            }
            return result;
        }
        Err(RunError::Step(format!("unknown step {name}")))
    }

    async fn say(&self, idx: i64, line: &str) -> Result<(), RunError> {
        self.runs.say(self.run.id, idx, line).await
    }

    async fn status(&self, r: &Removal, text: &str) {
        if let Some(seq) = r.seq {
            if let Err(e) = self
                .runs
                .inner()
                .store
                .set_object_done(self.run.id, seq, text)
                .await
            {
                tracing::warn!(run = self.run.id.0, error = %crate::audit::error_chain(&e), "could not record a pod's status");
            }
            self.runs.bump();
        }
    }

    async fn drain(&self, idx: i64, node: &NodeName) -> Result<(), RunError> {
        let opts = &self.params.options;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(opts.timeout_seconds);
        let pods = pods_on(&self.client, node.as_str(), &opts.pod_selector).await?;
        let verdicts = judge(&self.client, &pods, opts).await;
        if let Some(err) = blocked_error(&pods, &verdicts) {
            return Err(RunError::Drain(format!(
                "{node}: {err}; nothing was evicted"
            )));
        }
        let pdbs = budgets(&self.client).await?;
        let mut warnings: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut removals = Vec::new();
        for (pod, v) in pods.iter().zip(&verdicts) {
            if !v.reason.is_empty() && v.verdict != Verdict::Blocked {
                warnings.entry(&v.reason).or_default().push(pod_key(pod));
            }
            if v.verdict.removes() {
                let (namespace, name) = (
                    pod.metadata.namespace.clone().unwrap_or_default(),
                    pod.metadata.name.clone().unwrap_or_default(),
                );
                let seq = self
                    .rows
                    .iter()
                    .find(|r| {
                        r.kind == "Pod"
                            && r.namespace.as_deref() == Some(namespace.as_str())
                            && r.name == name
                    })
                    .map(|r| r.seq);
                removals.push(Removal {
                    key: pod_key(pod),
                    namespace,
                    name,
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    seq,
                    budgets: covering(&pdbs, pod).into_iter().map(pdb_key).collect(),
                });
            }
        }
        for (reason, pods) in &warnings {
            self.say(idx, &format!("Warning: {reason}: {}", pods.join(", ")))
                .await?;
        }
        if removals.is_empty() {
            return self
                .say(idx, &format!("node/{node} drained: no pod to remove"))
                .await;
        }
        let verb = if opts.disable_eviction {
            "deleting"
        } else {
            "evicting"
        };
        self.say(
            idx,
            &format!(
                "{verb} {} pod(s), {} at a time",
                removals.len(),
                opts.concurrency
            ),
        )
        .await?;
        let remaining: Arc<Mutex<BTreeSet<String>>> =
            Arc::new(Mutex::new(removals.iter().map(|r| r.key.clone()).collect()));
        // Boxed one by one: the futures borrow `self` and the removal they work on.
        let mut jobs: Vec<BoxFuture<'_, Result<(), RunError>>> = Vec::new();
        for r in &removals {
            jobs.push(Box::pin(self.remove(idx, r, &remaining)));
        }
        let evictions = futures::stream::iter(jobs)
            .buffer_unordered(opts.concurrency)
            .try_collect::<Vec<()>>();
        let waiting = self.wait_gone(node, &removals, &remaining);
        let work = async { futures::try_join!(evictions, waiting).map(|_| ()) };
        let mut cancel = self.cancel.clone();
        let cancelled = async {
            while !*cancel.borrow_and_update() {
                if cancel.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            r = work => {
                r?;
                self.say(
                    idx,
                    &format!("node/{node} drained in {:.1} s", started.elapsed().as_secs_f64()),
                )
                .await
            }
            () = cancelled => Err(RunError::Kube(KubeError::Cancelled)),
            () = tokio::time::sleep_until(deadline.into()) => {
                let left: Vec<String> = remaining
                    .lock()
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                Err(RunError::Drain(format!(
                    "drain of node {node} did not complete within {} s: still there: {}",
                    opts.timeout_seconds,
                    left.join(", ")
                )))
            }
        }
    }

    /// Evicts (or deletes) one pod, retrying 429 every 5 s with the blocking budget named.
    async fn remove(
        &self,
        idx: i64,
        r: &Removal,
        remaining: &Mutex<BTreeSet<String>>,
    ) -> Result<(), RunError> {
        let opts = &self.params.options;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &r.namespace);
        let dp = DeleteParams {
            grace_period_seconds: opts.grace_period_seconds,
            // The pod evicted is the one judged: a replacement with the same name is not.
            preconditions: Some(kube::api::Preconditions {
                uid: Some(r.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let mut blocked_since: Option<Instant> = None;
        loop {
            let result = if opts.disable_eviction {
                api.delete(&r.name, &dp).await.map(|_| ())
            } else {
                let ep = EvictParams {
                    delete_options: Some(dp.clone()),
                    ..EvictParams::default()
                };
                api.evict(&r.name, &ep).await.map(|_| ())
            };
            match result {
                Ok(()) => {
                    if let Some(since) = blocked_since {
                        self.say(
                            idx,
                            &format!(
                                "{}: evicted after {} s blocked by its PodDisruptionBudget",
                                r.key,
                                since.elapsed().as_secs()
                            ),
                        )
                        .await?;
                    }
                    let still = remaining.lock().map(|s| s.contains(&r.key)).unwrap_or(true);
                    if still {
                        let verb = if opts.disable_eviction {
                            "deleted"
                        } else {
                            "evicted"
                        };
                        self.status(r, &format!("{verb}, waiting until gone")).await;
                    }
                    return Ok(());
                }
                // Gone already, or replaced (the UID precondition failed): nothing to evict.
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 429 => {
                    let first = blocked_since.is_none();
                    let since = *blocked_since.get_or_insert_with(Instant::now);
                    let why = if r.budgets.is_empty() {
                        "(unknown)".to_owned()
                    } else {
                        r.budgets.join(", ")
                    };
                    let cause = e
                        .details
                        .as_ref()
                        .and_then(|d| d.causes.first())
                        .map(|c| c.message.clone())
                        .unwrap_or_else(|| e.message.clone());
                    let text = format!(
                        "blocked by PodDisruptionBudget {why} for {} s: {cause}",
                        since.elapsed().as_secs()
                    );
                    if first {
                        self.say(idx, &format!("{}: {text} (retrying every 5 s)", r.key))
                            .await?;
                    }
                    self.status(r, &text).await;
                    tokio::time::sleep(RETRY_AFTER_429).await;
                }
                Err(e) => {
                    let verb = if opts.disable_eviction {
                        "delete"
                    } else {
                        "evict"
                    };
                    return Err(call(verb, format!("pod {}", r.key))(e));
                }
            }
        }
    }

    /// Waits until every removed pod is gone or replaced (another UID), looking again on each
    /// change of the live state (at most every 100 ms) or every second.
    async fn wait_gone(
        &self,
        node: &NodeName,
        removals: &[Removal],
        remaining: &Mutex<BTreeSet<String>>,
    ) -> Result<(), RunError> {
        let mut changes = self.state.as_ref().map(|s| s.changes());
        loop {
            let now: HashMap<String, String> = pods_on(
                &self.client,
                node.as_str(),
                &self.params.options.pod_selector,
            )
            .await?
            .iter()
            .map(|p| (pod_key(p), p.metadata.uid.clone().unwrap_or_default()))
            .collect();
            let mut left = 0;
            for r in removals {
                let pending = remaining
                    .lock()
                    .map(|s| s.contains(&r.key))
                    .unwrap_or(false);
                if !pending {
                    continue;
                }
                match now.get(&r.key) {
                    Some(uid) if *uid == r.uid => left += 1,
                    other => {
                        if let Ok(mut s) = remaining.lock() {
                            s.remove(&r.key);
                        }
                        let what = if other.is_some() {
                            "replaced (new UID)"
                        } else {
                            "gone"
                        };
                        self.status(r, what).await;
                    }
                }
            }
            if left == 0 {
                return Ok(());
            }
            let wake = async {
                match changes.as_mut() {
                    Some(rx) => {
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let _ = tokio::time::timeout(POLL, wake).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn owned(kind: &str) -> serde_json::Value {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": "owner", "uid": "u", "controller": true}])
    }

    fn exists(_: &str, _: &str) -> DaemonSetLookup {
        DaemonSetLookup::Exists
    }

    fn seed() -> DrainOptions {
        DrainOptions::default()
    }

    fn none() -> DrainOptions {
        DrainOptions {
            delete_emptydir_data: false,
            ignore_daemonsets: false,
            force: false,
            ..DrainOptions::default()
        }
    }

    fn v(p: &Pod, o: &DrainOptions) -> (Verdict, String) {
        let r = verdict(p, o, 1_000_000, &exists);
        (r.verdict, r.reason)
    }

    #[test]
    fn a_replicaset_pod_is_evicted_or_deleted_without_eviction() {
        let p = pod(
            json!({"metadata": {"name": "web-1", "namespace": "demo", "ownerReferences": owned("ReplicaSet")}}),
        );
        assert_eq!(v(&p, &none()), (Verdict::Evict, String::new()));
        let o = DrainOptions {
            disable_eviction: true,
            ..seed()
        };
        assert_eq!(v(&p, &o).0, Verdict::Delete);
    }

    #[test]
    fn daemonset_pods_block_without_the_flag_and_are_skipped_with_it() {
        let p = pod(
            json!({"metadata": {"name": "calico-node-x", "namespace": "kube-system", "ownerReferences": owned("DaemonSet")}}),
        );
        assert_eq!(
            v(&p, &none()),
            (Verdict::Blocked, DAEMONSET_FATAL.to_owned())
        );
        assert_eq!(v(&p, &seed()), (Verdict::Skip, DAEMONSET_SKIP.to_owned()));
        // Orphaned: blocked without --force, deleted with it (even without --ignore-daemonsets).
        let gone = |_: &str, _: &str| DaemonSetLookup::NotFound;
        let r = verdict(&p, &none(), 0, &gone);
        assert_eq!(r.verdict, Verdict::Blocked);
        assert!(r.reason.contains("not found"), "{}", r.reason);
        let forced = DrainOptions {
            force: true,
            ..none()
        };
        assert_eq!(verdict(&p, &forced, 0, &gone).verdict, Verdict::Evict);
        // A finished DaemonSet pod is removed.
        let done = pod(
            json!({"metadata": {"name": "d", "namespace": "n", "ownerReferences": owned("DaemonSet")}, "status": {"phase": "Failed"}}),
        );
        assert_eq!(v(&done, &none()).0, Verdict::Evict);
    }

    #[test]
    fn mirror_pods_are_skipped_even_without_a_controller() {
        let p = pod(
            json!({"metadata": {"name": "kube-apiserver-betelgeuse", "namespace": "kube-system",
            "annotations": {"kubernetes.io/config.mirror": "abc"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "betelgeuse", "uid": "n", "controller": true}]}}),
        );
        assert_eq!(v(&p, &none()), (Verdict::Skip, MIRROR_SKIP.to_owned()));
    }

    #[test]
    fn empty_dir_blocks_without_the_option_unless_finished() {
        let p = pod(
            json!({"metadata": {"name": "cache-1", "namespace": "demo", "ownerReferences": owned("ReplicaSet")},
            "spec": {"containers": [], "volumes": [{"name": "scratch", "emptyDir": {}}]}}),
        );
        assert_eq!(
            v(&p, &none()),
            (Verdict::Blocked, LOCAL_STORAGE_FATAL.to_owned())
        );
        assert_eq!(
            v(&p, &seed()),
            (Verdict::Evict, LOCAL_STORAGE_WARNING.to_owned())
        );
        let mut done = p.clone();
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).expect("status"));
        assert_eq!(v(&done, &none()).0, Verdict::Evict);
    }

    #[test]
    fn unmanaged_pods_need_force_and_finished_pods_never_do() {
        let p = pod(json!({"metadata": {"name": "debug-shell", "namespace": "demo"}}));
        assert_eq!(
            v(&p, &none()),
            (Verdict::Blocked, UNMANAGED_FATAL.to_owned())
        );
        assert_eq!(
            v(&p, &seed()),
            (Verdict::Evict, UNMANAGED_WARNING.to_owned())
        );
        let done = pod(
            json!({"metadata": {"name": "job-x", "namespace": "demo"}, "status": {"phase": "Succeeded"}}),
        );
        assert_eq!(v(&done, &none()), (Verdict::Evict, String::new()));
    }

    #[test]
    fn terminating_pods_are_skipped_only_past_the_skip_timeout() {
        // Deleted at t=1000, now t=1000000: terminating for a long time.
        let p = pod(json!({"metadata": {"name": "old", "namespace": "demo",
            "deletionTimestamp": "1970-01-01T00:16:40Z", "ownerReferences": owned("ReplicaSet")}}));
        assert_eq!(v(&p, &seed()).0, Verdict::Evict, "kubectl's default waits");
        let o = DrainOptions {
            skip_wait_for_delete_timeout_seconds: 60,
            ..seed()
        };
        assert_eq!(v(&p, &o).0, Verdict::Skip);
        let young = verdict(&p, &o, 1030, &exists);
        assert_eq!(young.verdict, Verdict::Evict);
    }

    #[test]
    fn the_first_filter_that_refuses_decides() {
        // A DaemonSet pod with emptyDir and no --ignore-daemonsets: the DaemonSet reason wins.
        let p = pod(
            json!({"metadata": {"name": "x", "namespace": "n", "ownerReferences": owned("DaemonSet")},
            "spec": {"containers": [], "volumes": [{"name": "s", "emptyDir": {}}]}}),
        );
        assert_eq!(v(&p, &none()).1, DAEMONSET_FATAL);
        // emptyDir and no controller: local storage is checked first.
        let q = pod(
            json!({"metadata": {"name": "y", "namespace": "n"}, "spec": {"containers": [], "volumes": [{"name": "s", "emptyDir": {}}]}}),
        );
        assert_eq!(v(&q, &none()).1, LOCAL_STORAGE_FATAL);
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let sel = |labels: &[(&str, &str)], exprs: Vec<(&str, &str, Vec<&str>)>| LabelSelector {
            match_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            match_expressions: (!exprs.is_empty()).then(|| {
                exprs
                    .into_iter()
                    .map(|(k, op, vals)| LabelSelectorRequirement {
                        key: k.to_owned(),
                        operator: op.to_owned(),
                        values: Some(vals.into_iter().map(str::to_owned).collect()),
                    })
                    .collect()
            }),
        };
        assert!(selects(&sel(&[], vec![]), &labels), "empty selects all");
        assert!(selects(&sel(&[("app", "web")], vec![]), &labels));
        assert!(!selects(&sel(&[("app", "db")], vec![]), &labels));
        assert!(selects(
            &sel(&[], vec![("tier", "In", vec!["front", "back"])]),
            &labels
        ));
        assert!(!selects(
            &sel(&[], vec![("tier", "NotIn", vec!["front"])]),
            &labels
        ));
        assert!(selects(&sel(&[], vec![("app", "Exists", vec![])]), &labels));
        assert!(selects(
            &sel(&[], vec![("zone", "DoesNotExist", vec![])]),
            &labels
        ));
        assert!(!selects(&sel(&[], vec![("app", "Bogus", vec![])]), &labels));
    }

    #[test]
    fn options_are_validated() {
        assert!(validate(&DrainOptions::default()).is_ok());
        for bad in [
            DrainOptions {
                concurrency: 0,
                ..seed()
            },
            DrainOptions {
                timeout_seconds: 0,
                ..seed()
            },
            DrainOptions {
                pod_selector: "app=web; rm -rf /".into(),
                ..seed()
            },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
        let ok = DrainOptions {
            pod_selector: "app in (web,db),tier!=front".into(),
            ..seed()
        };
        assert!(validate(&ok).is_ok());
    }

    #[test]
    fn blocked_pods_are_reported_per_reason_as_kubectl_does() {
        let a = pod(json!({"metadata": {"name": "a", "namespace": "demo"}}));
        let b = pod(json!({"metadata": {"name": "b", "namespace": "demo"}}));
        let verdicts = vec![v(&a, &none()), v(&b, &none())]
            .into_iter()
            .map(|(verdict, reason)| PodVerdict { verdict, reason })
            .collect::<Vec<_>>();
        assert_eq!(
            blocked_error(&[a, b], &verdicts).as_deref(),
            Some(
                "cannot delete Pods declare no controller (use --force to override): demo/a, demo/b"
            )
        );
    }
}
