//! The rollout step: every DaemonSet and Deployment of the run rolled out and every node Ready.

use std::time::Duration;

use grappe_views::runs::{ProgressUnit, StepProgress, Tally};
use serde_json::Value;

use super::*;
use crate::runs::k8s::{self, ObjectRef};
use crate::runs::step::{Next, Wait};
use crate::runs::{Failure, RunError, Workflow};

impl StepContext {
    /// The cluster's live state (none for a cluster without one).
    pub(super) fn live(&self) -> Option<std::sync::Arc<crate::state::ClusterState>> {
        self.cx.runs.inner().states.get(&self.cx.run.cluster)
    }

    /// A wait of `what` up to the rollout's timeout, looking again when the live state
    /// changes (pods turning Ready, a DaemonSet's status), at the latest after a second.
    pub(super) fn live_wait(&self, what: &str) -> Wait {
        Wait::new(what.to_owned(), Duration::from_secs(1))
            .timeout(self.rollout_timeout)
            .woken_by(self.live().map(|s| s.changes()))
    }

    /// Waits until every DaemonSet and Deployment of the run is rolled out and every node is
    /// Ready, reporting progress; fails after the timeout saying what is missing.
    pub(super) async fn rollout(&mut self, idx: i64) -> Result<(), RunError> {
        let workloads: Vec<ObjectRef> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(i, row)| {
                matches!(row.kind.as_str(), "DaemonSet" | "Deployment")
                    // A rollback waits for what it restored, not for what it deleted; a
                    // migration not for what the operator deleted.
                    && (self.workflow != Workflow::CniRollback || self.target_before[*i].is_some())
                    && !super::steps::left_to_operator(row.planned)
            })
            .map(|(_, row)| row_ref(row))
            .collect();
        if workloads.is_empty() {
            return self.cx.say(idx, "no workload to wait for").await;
        }
        // Look again when the cluster's live state changes (pods turning Ready, the
        // DaemonSet's status); at the latest after a second.
        let wait = self.live_wait("the rollout").report_changes();
        let mut waiter = self.cx.waiter(idx, wait);
        loop {
            let mut missing = Vec::new();
            let mut lines = Vec::new();
            // Pods updated of those desired, over the workloads.
            let mut updated = Tally { done: 0, total: 0 };
            for w in &workloads {
                let found = match self.resolver.api(w).await {
                    Ok(api) => k8s::get(&api, w).await,
                    Err(e) => Err(e),
                };
                let obj = match found {
                    Ok(Some(obj)) => obj,
                    Ok(None) => {
                        missing.push(format!("{} is missing", w.key()));
                        continue;
                    }
                    // An API server that stops answering (restarted, overloaded) is waited
                    // for until the rollout's own timeout, as a person would retry.
                    Err(e) if e.unreachable() => {
                        let line = format!(
                            "the API server does not answer ({}): waiting",
                            crate::audit::error_chain(&e)
                        );
                        missing.push(line.clone());
                        lines.push(line);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                let (line, ready, pods) = if w.kind == "DaemonSet" {
                    self.daemonset_progress(&obj)
                } else {
                    deployment_progress(&obj)
                };
                updated.done += pods.done;
                updated.total += pods.total;
                if !ready {
                    missing.push(line.clone());
                }
                lines.push(line);
            }
            if let Some((line, available)) = self.operator_progress() {
                if !available {
                    missing.push(line.clone());
                }
                lines.push(line);
            }
            let (nodes_line, nodes_ready, counted) = self.nodes_progress().await?;
            if !nodes_ready {
                missing.push(nodes_line.clone());
            }
            lines.push(nodes_line);
            if let Some(mut progress) = counted {
                progress.updated = (updated.total > 0).then_some(updated);
                waiter.count(progress).await?;
            }
            let text = lines.join("; ");
            if missing.is_empty() {
                return waiter.done(&text).await;
            }
            if let Next::TimedOut(_) = waiter.not_yet(text).await? {
                return Err(Failure::RolloutTimeout {
                    seconds: self.rollout_timeout.as_secs(),
                    missing: missing.join("; "),
                }
                .into());
            }
        }
    }

    /// A DaemonSet's rollout line, whether it is done, and its pods updated of those desired.
    /// The nodes still waiting (no Ready pod of the DaemonSet) come from the live state: no
    /// LIST per poll.
    pub(super) fn daemonset_progress(&self, ds: &Value) -> (String, bool, Tally) {
        let n = |p: &str| ds.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let name = ds
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let ns = ds
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let (desired, updated, ready, available) = (
            n("/status/desiredNumberScheduled"),
            n("/status/updatedNumberScheduled"),
            n("/status/numberReady"),
            n("/status/numberAvailable"),
        );
        let observed = n("/status/observedGeneration") >= n("/metadata/generation");
        let done = observed && updated == desired && available == desired && ready == desired;
        let mut line = format!("{name}: {ready}/{desired} Ready, {updated} updated");
        if !done {
            let waiting = self.nodes_without_ready_pod(ns, name);
            if !waiting.is_empty() {
                let shown: Vec<&str> = waiting.iter().take(8).map(String::as_str).collect();
                line.push_str(&format!(
                    " (waiting on {}{})",
                    shown.join(", "),
                    if waiting.len() > 8 {
                        format!(" and {} more", waiting.len() - 8)
                    } else {
                        String::new()
                    }
                ));
            }
        }
        (line, done, tally(updated, desired))
    }

    /// The nodes with no Ready pod of DaemonSet `namespace/name`, from the live state.
    pub(super) fn nodes_without_ready_pod(&self, namespace: &str, name: &str) -> Vec<String> {
        let Some(state) = self.live() else {
            return Vec::new();
        };
        let stores = state.read();
        stores
            .nodes
            .keys()
            .filter(|node| {
                !stores.pods_on(node).any(|p| {
                    p.ready
                        && !p.deleting
                        && p.namespace == namespace
                        && p.owner
                            .as_ref()
                            .is_some_and(|o| o.kind == "DaemonSet" && o.name == name)
                })
            })
            .cloned()
            .collect()
    }

    /// For a run that applied the Tigera operator's custom resources: the operator's report of
    /// each component they ask for (`TigeraStatus`, from the live state), whether all are
    /// Available, and what is Degraded with its message. `None` for other runs.
    pub(super) fn operator_progress(&self) -> Option<(String, bool)> {
        if self.workflow == Workflow::CniRollback {
            return None;
        }
        let wanted: Vec<&str> = self
            .rows
            .iter()
            .filter_map(|row| crate::manifests::parse::operator_component(&row.kind))
            .collect();
        if wanted.is_empty() {
            return None;
        }
        let Some(state) = self.live() else {
            return Some(("TigeraStatus: no live state".into(), false));
        };
        let stores = state.read();
        Some(tigera_line(&wanted, &stores.tigera_status))
    }

    pub(super) async fn nodes_progress(
        &self,
    ) -> Result<(String, bool, Option<StepProgress>), RunError> {
        let Some(state) = self.live() else {
            return Ok(("nodes: no live state".into(), false, None));
        };
        let stores = state.read();
        let total = stores.nodes.len();
        let not_ready: Vec<&str> = stores
            .nodes
            .values()
            .filter(|n| !n.is_ready())
            .map(|n| n.name.as_str())
            .collect();
        let mut line = format!("nodes: {}/{total} Ready", total - not_ready.len());
        if !not_ready.is_empty() {
            let shown: Vec<&str> = not_ready.iter().take(8).copied().collect();
            line.push_str(&format!(" (NotReady: {})", shown.join(", ")));
        }
        let counted = StepProgress {
            done: (total - not_ready.len()) as u64,
            total: total as u64,
            unit: ProgressUnit::NodesReady,
            note: None,
            updated: None,
        };
        Ok((line, not_ready.is_empty(), Some(counted)))
    }
}

/// `done` of `total` from a status's counts (negative ones read as none).
fn tally(done: i64, total: i64) -> Tally {
    Tally {
        done: u64::try_from(done).unwrap_or(0),
        total: u64::try_from(total).unwrap_or(0),
    }
}

/// A Deployment's rollout line, whether it is done, and its pods updated of those wanted.
fn deployment_progress(d: &Value) -> (String, bool, Tally) {
    let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let name = d
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let (updated, available, replicas) = (
        n("/status/updatedReplicas"),
        n("/status/availableReplicas"),
        n("/status/replicas"),
    );
    let observed = n("/status/observedGeneration") >= n("/metadata/generation");
    let done = observed && updated == want && available == want && replicas == want;
    (
        format!("{name}: {available}/{want} available, {updated} updated"),
        done,
        tally(updated, want),
    )
}

/// The operator's components as a rollout line: each wanted one's state, every Degraded one
/// with its reason and message; done when every wanted one is Available.
fn tigera_line(
    wanted: &[&str],
    statuses: &std::collections::BTreeMap<String, crate::state::model::TigeraStatusInfo>,
) -> (String, bool) {
    let mut parts = Vec::new();
    let mut done = true;
    for name in wanted {
        match statuses.get(*name) {
            None => {
                done = false;
                parts.push(format!("{name}: not reported yet"));
            }
            Some(t) => {
                done &= t.available && !t.degraded;
                let settling = if t.available && t.progressing {
                    " (still progressing)"
                } else {
                    ""
                };
                parts.push(format!("{name}: {}{settling}", t.state()));
            }
        }
    }
    for t in statuses.values().filter(|t| t.degraded) {
        parts.push(format!("{} Degraded ({}: {})", t.name, t.reason, t.message));
    }
    (format!("TigeraStatus {}", parts.join(", ")), done)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::model::TigeraStatusInfo;

    fn status(name: &str, state: &str, message: &str) -> (String, TigeraStatusInfo) {
        (
            name.to_owned(),
            TigeraStatusInfo {
                name: name.to_owned(),
                available: state == "Available",
                progressing: state == "Progressing",
                degraded: state == "Degraded",
                reason: if message.is_empty() {
                    String::new()
                } else {
                    "ResourceNotReady".into()
                },
                message: message.to_owned(),
                since: 0,
            },
        )
    }

    #[test]
    fn the_operator_line_names_what_is_degraded_and_waits_for_what_was_asked() {
        let mut statuses: std::collections::BTreeMap<_, _> =
            [status("calico", "Progressing", "")].into_iter().collect();
        let (line, done) = tigera_line(&["calico", "apiserver"], &statuses);
        assert!(!done);
        assert_eq!(
            line,
            "TigeraStatus calico: Progressing, apiserver: not reported yet"
        );
        statuses.extend([
            status("calico", "Available", ""),
            status(
                "apiserver",
                "Degraded",
                "no endpoints available for service calico-api",
            ),
            status("ippools", "Available", ""),
        ]);
        let (line, done) = tigera_line(&["calico", "apiserver"], &statuses);
        assert!(!done);
        assert!(
            line.contains("apiserver Degraded (ResourceNotReady: no endpoints available"),
            "{line}"
        );
        let (_, done) = tigera_line(&["calico"], &statuses);
        assert!(
            done,
            "a Degraded component the run did not ask for shows, but does not block"
        );
        let (_, mut settling) = status("calico", "Available", "");
        settling.progressing = true;
        let statuses = [("calico".to_owned(), settling)].into_iter().collect();
        let (line, done) = tigera_line(&["calico"], &statuses);
        assert!(done, "Available is enough, as kubectl wait reads it");
        assert_eq!(line, "TigeraStatus calico: Available (still progressing)");
    }

    #[test]
    fn a_deployment_counts_its_updated_pods_of_those_wanted() {
        let d = json!({
            "metadata": {"name": "calico-kube-controllers", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 1,
                       "availableReplicas": 2, "replicas": 3}
        });
        let (line, done, updated) = deployment_progress(&d);
        assert_eq!(line, "calico-kube-controllers: 2/2 available, 1 updated");
        assert!(!done, "an old pod is still there");
        assert_eq!((updated.done, updated.total), (1, 2));
    }
}
