//! The drain preview (every pod with its verdict, the budgets at zero) and its start; cordon
//! and uncordon as single audited actions.

use std::collections::BTreeMap;

use grappe_views::runs::{
    DrainNodeView, DrainPreviewView, PdbAtZeroView, PlanView, Planned, PlannedObjectView,
    PodVerdictView, Verdict,
};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;

use super::*;
use crate::audit::{Action, AuditEntry, Caller, GuardedError, Target};
use crate::names::NodeName;
use crate::runs::Launch;
use crate::runs::{Confirmation, RunError, RunId, Runs, Workflow, check, sealed};
use crate::state::model::NodeInfo;

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
        let launch = Launch {
            node: Some(plan.confirm_word()),
            ..Launch::new(plan, params, steps)
        };
        self.launch(caller, launch, expected_hash, confirmation)
            .await
    }
}
