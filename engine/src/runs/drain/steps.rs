//! The steps of a drain: cordon, then evict (or delete) every pod the preview removes and
//! wait until each is gone or replaced.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use grappe_views::runs::{ProgressUnit, StepProgress, Verdict};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams};
use tokio::sync::watch;

use super::*;
use crate::model::{ObjectRow, RunRow};
use crate::names::NodeName;
use crate::runs::k8s::KubeError;
use crate::runs::registry::Executor;
use crate::runs::step::{StepCx, Wait};
use crate::runs::{Failure, RunError, Runs};
use crate::state::ClusterState;

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
    cx: StepCx,
    client: Client,
    params: DrainParams,
    state: Option<Arc<ClusterState>>,
    rows: Vec<ObjectRow>,
}

impl DrainContext {
    pub(crate) async fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let params: DrainParams = crate::runs::run_params(run)?;
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
        let name = run.cluster.clone();
        Ok(Self {
            cx: StepCx::new(runs, run, cancel),
            client,
            params,
            state: runs.inner().states.get(&name),
            rows: runs.inner().store.run_objects(run.id).await?,
        })
    }

    pub(crate) async fn step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
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
            return self.cx.say(idx, &line).await;
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
                self.cx.say(idx, &line).await?;
            }
            return result;
        }
        Err(RunError::Corrupt(format!("unknown step {name}")))
    }

    async fn status(&self, r: &Removal, text: &str) {
        if let Some(seq) = r.seq {
            if let Err(e) = self
                .cx
                .runs
                .inner()
                .store
                .set_object_done(self.cx.run.id, seq, text)
                .await
            {
                tracing::warn!(run = self.cx.run.id.0, error = %crate::audit::error_chain(&e), "could not record a pod's status");
            }
            self.cx.runs.bump();
        }
    }

    async fn drain(&self, idx: i64, node: &NodeName) -> Result<(), RunError> {
        let opts = &self.params.options;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(opts.timeout_seconds);
        let pods = pods_on(&self.client, node.as_str(), &opts.pod_selector).await?;
        let verdicts = judge(&self.client, &pods, opts).await;
        if let Some(err) = blocked_error(&pods, &verdicts) {
            return Err(Failure::DrainBlocked {
                node: node.to_string(),
                pods: err,
            }
            .into());
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
            self.cx
                .say(idx, &format!("Warning: {reason}: {}", pods.join(", ")))
                .await?;
        }
        if removals.is_empty() {
            return self
                .cx
                .say(idx, &format!("node/{node} drained: no pod to remove"))
                .await;
        }
        let verb = if opts.disable_eviction {
            "deleting"
        } else {
            "evicting"
        };
        self.cx
            .say(
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
        // The budgets refusing an eviction now, by pod: named on the progress bar.
        let held: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
        // Boxed one by one: the futures borrow `self` and the removal they work on.
        let mut jobs: Vec<BoxFuture<'_, Result<(), RunError>>> = Vec::new();
        for r in &removals {
            jobs.push(Box::pin(self.remove(idx, r, &remaining, &held)));
        }
        let evictions = futures::stream::iter(jobs)
            .buffer_unordered(opts.concurrency)
            .try_collect::<Vec<()>>();
        let waiting = self.wait_gone(idx, node, &removals, &remaining, &held);
        let work = async { futures::try_join!(evictions, waiting).map(|_| ()) };
        let mut cancel = self.cx.cancel.clone();
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
                self.cx.say(
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
                Err(Failure::DrainTimeout {
                    node: node.to_string(),
                    seconds: opts.timeout_seconds,
                    pods: left.join(", "),
                }
                .into())
            }
        }
    }

    /// Evicts (or deletes) one pod, retrying 429 every 5 s with the blocking budget named.
    async fn remove(
        &self,
        idx: i64,
        r: &Removal,
        remaining: &Mutex<BTreeSet<String>>,
        held: &Mutex<BTreeMap<String, String>>,
    ) -> Result<(), RunError> {
        let opts = &self.params.options;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &r.namespace);
        let mut blocked_since: Option<Instant> = None;
        loop {
            let result = evict_or_delete(&api, r, opts).await;
            match result {
                Ok(()) => {
                    if let Ok(mut h) = held.lock() {
                        h.remove(&r.key);
                    }
                    if let Some(since) = blocked_since {
                        self.cx
                            .say(
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
                    let text = blocked(r, since.elapsed().as_secs(), &e);
                    if let Ok(mut h) = held.lock() {
                        h.insert(r.key.clone(), held_by(r));
                    }
                    if first {
                        self.cx
                            .say(idx, &format!("{}: {text} (retrying every 5 s)", r.key))
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
        idx: i64,
        node: &NodeName,
        removals: &[Removal],
        remaining: &Mutex<BTreeSet<String>>,
        held: &Mutex<BTreeMap<String, String>>,
    ) -> Result<(), RunError> {
        // No timeout nor cancel here: the drain's step bounds this wait and the evictions
        // together. Woken by the live state (pods deleted), at the latest after a second.
        let changes = self.state.as_ref().map(|s| s.changes());
        let wait = Wait::new("pods gone", POLL).woken_by(changes);
        let mut waiter = self.cx.waiter(idx, wait);
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
            let note = held.lock().ok().and_then(|h| {
                let budgets: BTreeSet<&String> = h.values().collect();
                let names: Vec<&str> = budgets.into_iter().map(String::as_str).collect();
                (!names.is_empty()).then(|| names.join(", "))
            });
            let progress = StepProgress {
                done: (removals.len() - left) as u64,
                total: removals.len() as u64,
                unit: ProgressUnit::PodsGone,
                note,
                updated: None,
            };
            waiter.count(progress).await?;
            if left == 0 {
                return Ok(());
            }
            waiter.not_yet(format!("{left} pod(s) still there")).await?;
        }
    }
}

impl Executor for DrainContext {
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(self.step(idx, name))
    }
}

/// Evicts the pod of `r` (or deletes it, eviction disabled), only if it is still the pod the
/// preview judged: its UID is the precondition. kubectl's call, one attempt.
async fn evict_or_delete(
    api: &Api<Pod>,
    r: &Removal,
    opts: &DrainOptions,
) -> Result<(), kube::Error> {
    let dp = DeleteParams {
        grace_period_seconds: opts.grace_period_seconds,
        // The pod evicted is the one judged: a replacement with the same name is not.
        preconditions: Some(kube::api::Preconditions {
            uid: Some(r.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if opts.disable_eviction {
        return api.delete(&r.name, &dp).await.map(|_| ());
    }
    // An Eviction of policy/v1 written out: kube 5.0's `Api::evict` sends its delete options
    // under `delete_options`, a key the API server ignores, so neither the UID precondition
    // nor the grace period would reach it (the mock test below caught it).
    let eviction = serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": { "name": r.name, "namespace": r.namespace },
        "deleteOptions": dp,
    });
    api.create_subresource::<_, serde_json::Value>(
        "eviction",
        &r.name,
        &kube::api::PostParams::default(),
        &eviction,
    )
    .await
    .map(|_| ())
}

/// The budgets that hold `r` back, as the progress bar names them.
fn held_by(r: &Removal) -> String {
    if r.budgets.is_empty() {
        "PodDisruptionBudget".to_owned()
    } else {
        format!("PodDisruptionBudget {}", r.budgets.join(", "))
    }
}

/// What a pod's status says while its eviction is refused with 429: the budgets that cover it
/// (the preview named them) and the API server's cause.
fn blocked(r: &Removal, seconds: u64, e: &kube::core::Status) -> String {
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
    format!("blocked by PodDisruptionBudget {why} for {seconds} s: {cause}")
}

#[cfg(test)]
mod mock_tests;
