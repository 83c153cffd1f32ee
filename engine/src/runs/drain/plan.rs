//! The drain preview (every pod with its verdict, the budgets at zero) and its start; cordon
//! and uncordon as single audited actions.

use grappe_views::vocab::Level;
use std::collections::BTreeMap;

use grappe_views::runs::{
    DrainNodeView, DrainPreviewView, PdbAtZeroView, PlanDetail, Planned, PlannedObjectView,
    PodVerdictView, Verdict,
};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;

use super::*;
use crate::audit::{Action, AuditEntry, Caller, GuardedError, Target};
use crate::model::Plan;
use crate::names::{ClusterName, NodeName};
use crate::runs::Launch;
use crate::runs::{RunError, Runs, Workflow, check};
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
        cluster: &ClusterName,
        node: &NodeName,
        unschedulable: bool,
    ) -> Result<bool, RunError> {
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
                cluster: Some(cluster.to_string()),
                node: Some(node.to_string()),
                object: None,
            },
            crate::audit::Outcome::Attempted,
        );
        let result = self
            .inner()
            .audit
            .guarded(entry, patch_unschedulable(&client, node, unschedulable))
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
    /// Invalid options, no node or one named twice, an unknown cluster, API errors.
    pub async fn plan_drain(
        &self,
        cluster: &ClusterName,
        request: &DrainParams,
    ) -> Result<Plan, RunError> {
        let (names, opts) = (&request.nodes, &request.options);
        validate(opts)?;
        if names.is_empty() {
            return Err(RunError::Invalid("no node to drain".into()));
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(RunError::Invalid(format!("node {n} is named twice")));
            }
        }
        let client = self.client_of(cluster).await?;
        let pdbs = budgets(&client).await?;
        let mut checks = Vec::new();
        let mut views = Vec::new();
        let mut objects = Vec::new();
        let mut at_zero: BTreeMap<String, (PodDisruptionBudget, Vec<String>)> = BTreeMap::new();
        let nodes_api: Api<Node> = Api::all(client.clone());
        for name in names {
            let Some(node) = nodes_api
                .get_opt(name.as_str())
                .await
                .map_err(call("get", format!("node {name}")))?
            else {
                checks.push(check(
                    "node",
                    Level::Fail,
                    format!("node {name} does not exist"),
                ));
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
                    Level::Warn,
                    format!("{name} is a control-plane node: its static pods stay (mirror pods are skipped)"),
                ));
            }
            let pods = pods_on(&client, name.as_str(), &opts.pod_selector).await?;
            let verdicts = judge(&client, &pods, opts).await;
            if let Some(err) = blocked_error(&pods, &verdicts) {
                checks.push(check(
                    "blocked",
                    Level::Fail,
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
        if let Some(state) = self.inner().states.get(cluster) {
            let draining: Vec<&str> = names.iter().map(NodeName::as_str).collect();
            let warning = crate::bgp::drain_warning(&state.read(), &draining);
            if let Some(w) = warning {
                checks.push(check("route-reflector", Level::Warn, w));
            }
        }
        if !at_zero.is_empty() {
            checks.push(check(
                "pdb",
                Level::Warn,
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
                Level::Warn,
                "eviction disabled: pods are deleted and PodDisruptionBudgets are bypassed",
            ));
        }
        if checks.iter().all(|c| c.level != Level::Fail) {
            checks.push(check(
                "pods",
                Level::Pass,
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
        let request_json = serde_json::to_value(request).map_err(RunError::Encode)?;
        let title = format!("drain {}", node_list.join(", "));
        Ok(sealed_drain(Plan {
            options: opts.flags(),
            objects,
            checks,
            detail: PlanDetail::Drain(DrainPreviewView {
                options: opts.clone(),
                nodes: views,
                pdbs_at_zero,
            }),
            // The nodes' names: typing the cluster's name drains nothing by mistake.
            confirm: node_list.join(" "),
            ..Plan::new(cluster, Workflow::NodeDrain, title, request_json)
        }))
    }

    /// The drain a confirmed request starts: the preview made again, a cordon and a drain
    /// step per node.
    pub(super) async fn prepare_drain(
        &self,
        cluster: &ClusterName,
        request: &DrainParams,
    ) -> Result<Launch, RunError> {
        let plan = self.plan_drain(cluster, request).await?;
        let steps = request
            .nodes
            .iter()
            .flat_map(|n| [format!("cordon {n}"), format!("drain {n}")])
            .collect();
        let params = serde_json::to_value(request).map_err(RunError::Encode)?;
        Ok(Launch {
            node: Some(plan.confirm.clone()),
            ..Launch::new(plan, params, steps)
        })
    }
}

/// A drain plan's seal: its hash covers the pods, their verdicts and the budgets that block
/// them, not a pod's phase nor a budget's healthy counts
/// ([`DrainPreviewView::without_live_figures`]): hashed, they refused a drain previewed while a
/// pod on the node turned from Pending to Running after a CNI install.
pub(crate) fn sealed_drain(plan: Plan) -> Plan {
    crate::runs::consent::sealed_except(plan, |basis| {
        if let PlanDetail::Drain(d) = &basis.detail {
            basis.detail = PlanDetail::Drain(d.without_live_figures());
        }
    })
}

#[cfg(test)]
mod tests {
    use grappe_views::runs::{DrainNodeView, DrainOptions, PdbAtZeroView, PodVerdictView, Verdict};

    use super::*;
    use crate::model::Workflow;
    use crate::runs::check;

    fn drain_plan(phase: &str, healthy: i32, verdict: Verdict) -> Plan {
        let lab = ClusterName::parse("lab").expect("name");
        Plan {
            checks: vec![check("pods", Level::Pass, "1 pod(s) to remove")],
            detail: PlanDetail::Drain(DrainPreviewView {
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
            ..Plan::new(
                &lab,
                Workflow::NodeDrain,
                "drain saiph",
                serde_json::json!({}),
            )
        }
    }

    #[test]
    fn a_drain_hash_ignores_live_figures_but_not_verdicts() {
        let planned = sealed_drain(drain_plan("Pending", 2, Verdict::Evict));
        let started = sealed_drain(drain_plan("Running", 3, Verdict::Evict));
        assert_eq!(planned.hash, started.hash);
        // What is shown keeps the live figures.
        assert_eq!(
            started
                .view()
                .drain()
                .map(|d| d.pdbs_at_zero[0].current_healthy),
            Some(3)
        );
        assert_ne!(
            planned.hash,
            sealed_drain(drain_plan("Pending", 2, Verdict::Delete)).hash
        );
        let mut other_pod = drain_plan("Pending", 2, Verdict::Evict);
        if let PlanDetail::Drain(d) = &mut other_pod.detail {
            d.nodes[0].pods[0].name = "web-2".into();
        }
        assert_ne!(planned.hash, sealed_drain(other_pod).hash);
    }
}
