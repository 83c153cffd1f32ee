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
use std::time::Duration;

use grappe_views::runs::Verdict;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::k8s::KubeError;
use super::registry::{Kind, Load, Loading, Policy, Preparing, loading, request};
use super::{RunError, Runs, Workflow};
use crate::names::{ClusterName, NodeName};
use crate::users::Role;

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
/// [`RunError::Invalid`] naming the option out of range.
pub fn validate(opts: &DrainOptions) -> Result<(), RunError> {
    if opts.concurrency == 0 || opts.concurrency > MAX_CONCURRENCY {
        return Err(RunError::Invalid(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    if opts.timeout_seconds == 0 || opts.timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(RunError::Invalid(format!(
            "timeout must be between 1 s and {MAX_TIMEOUT_SECONDS} s"
        )));
    }
    if opts
        .grace_period_seconds
        .is_some_and(|g| u64::from(g) > MAX_TIMEOUT_SECONDS)
    {
        return Err(RunError::Invalid("grace period too long".into()));
    }
    if opts.skip_wait_for_delete_timeout_seconds > MAX_TIMEOUT_SECONDS {
        return Err(RunError::Invalid(
            "skip-wait-for-delete timeout too long".into(),
        ));
    }
    let selector = opts.pod_selector.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./=!,() ".contains(c);
    if selector.len() > 1024 || !selector.chars().all(allowed) {
        return Err(RunError::Invalid(format!(
            "pod selector {:?} is not a label selector",
            crate::names::sanitize_for_display(selector, 80)
        )));
    }
    Ok(())
}

/// The least role that may start a drain with `opts`: disabling eviction bypasses
/// PodDisruptionBudgets, so it is for admins; otherwise the drain's policy (operators).
#[must_use]
pub fn start_role(opts: &DrainOptions) -> Role {
    if opts.disable_eviction {
        Role::Admin
    } else {
        Drain.policy().start
    }
}

/// A drain's request, and its run's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainParams {
    pub nodes: Vec<NodeName>,
    pub options: DrainOptions,
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

mod plan;
mod steps;
mod verdict;

pub(crate) use steps::DrainContext;
pub use verdict::{DaemonSetLookup, PodVerdict, selects, verdict};
use verdict::{allowed, controller, covering, pdb_key, pod_key};

/// `node.drain`: cordon and drain nodes (operators may start and control it).
pub(crate) struct Drain;

impl Kind for Drain {
    fn id(&self) -> Workflow {
        Workflow::NodeDrain
    }

    fn policy(&self) -> Policy {
        Policy {
            control: Role::Operator,
            start: Role::Operator,
            resume_password: false,
            ..Policy::ADMIN
        }
    }

    fn prepare<'a>(
        &'a self,
        runs: &'a Runs,
        cluster: &'a ClusterName,
        req: &'a serde_json::Value,
        _offer: bool,
    ) -> Preparing<'a> {
        Box::pin(async move { runs.prepare_drain(cluster, &request(req)?).await })
    }

    fn executor<'a>(&'a self, at: Load<'a>) -> Loading<'a> {
        loading(DrainContext::load(at.runs, at.run, at.cancel))
    }

    fn start_role(&self, params: &serde_json::Value) -> Role {
        // Parameters this build cannot read: admins only.
        DrainParams::deserialize(params).map_or(Role::Admin, |p| start_role(&p.options))
    }
}
