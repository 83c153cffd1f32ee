//! Recovery of a lost kube-apiserver (admin), the seed's troubleshooting as one run that needs
//! only SSH to begin: look at the control-plane host (kubelet status, the kube-apiserver
//! container, the static-pod manifests), restart the kube-apiserver the kubeadm way (`touch`
//! its manifest, `systemctl restart kubelet`), wait for `/readyz` with a timeout, verify that
//! the container runs again, and then (ticked by default) roll back the most recent CNI
//! install, which is most often what broke it: the CNI rollback's own steps, in the same run.
//!
//! The run cannot take the cluster's `grappe-workflow` Lease (the API server is down): the
//! database's one-active-run-per-cluster index is its only guard, and it is planned only while
//! the API server does not answer. The rollback is planned from the install's snapshots alone
//! (what it created is deleted, what it changed restored); if the API server stays down, its
//! steps never start and the run says so.

mod known;
mod steps;

pub use known::remember_control_planes;

use grappe_views::vocab::Level;
use std::collections::BTreeSet;
use std::time::Duration;

use grappe_views::runs::{
    CheckView, PlanDetail, PlannedObjectView, RecoveryHostView, RecoveryPreviewView,
};
use serde::{Deserialize, Serialize};

use super::registry::{Kind, Load, Loading, Policy, Preparing, loading};
use super::{Launch, RunError, RunId, RunStatus, Runs, Workflow, check, sealed};
use crate::clusters::Reachability;
use crate::model::{Plan, RunRow};
use crate::names::{ClusterName, NodeName};
use crate::ssh::Endpoint;
use steps::RecoveryContext;

/// How long the run waits for `/readyz` after the restart.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A recovery run's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryParams {
    /// The control-plane hosts with the host key each must present.
    pub hosts: Vec<(Endpoint, String)>,
    pub ready_timeout_seconds: u64,
    /// The CNI install this run rolls back once the API server answers (none: restart only).
    #[serde(default)]
    pub rollback: Option<RunId>,
}

/// The name of a rollback step inside a recovery: `roll back run <id>: <step>`.
fn rollback_step(target: RunId, step: &str) -> String {
    format!("roll back run {target}: {step}")
}

/// The CNI install a recovery offers to roll back, with what its rollback does.
struct Offer {
    run: RunRow,
    objects: Vec<PlannedObjectView>,
}

impl Runs {
    /// Previews the recovery of a cluster whose API server does not answer; it offers the
    /// rollback of the most recent CNI install not rolled back yet.
    ///
    /// # Errors
    /// An unknown cluster, the database.
    pub async fn plan_recovery(&self, cluster: &ClusterName) -> Result<Plan, RunError> {
        let mut checks = vec![self.apiserver_down(cluster).await?];
        let hosts = self.control_plane_hosts(cluster, &mut checks).await?;
        let offer = self.rollback_offer(cluster).await?;
        if let Some(o) = &offer {
            let (deleted, restored) = o.objects.iter().fold((0, 0), |(d, r), p| match p.action {
                grappe_views::runs::Planned::Delete => (d + 1, r),
                _ => (d, r + 1),
            });
            checks.push(check(
                "rollback",
                Level::Warn,
                format!(
                    "then, once the API server answers, run {} ({}) is rolled back: {deleted} object(s) deleted, {restored} restored to their snapshot",
                    o.run.id, o.run.title
                ),
            ));
        }
        let title = "recover the kube-apiserver";
        Ok(sealed(Plan {
            options: hosts
                .iter()
                .map(|h| {
                    (
                        "control plane".to_owned(),
                        format!("{} ({})", h.node, h.endpoint),
                    )
                })
                .collect(),
            objects: offer
                .as_ref()
                .map(|o| o.objects.clone())
                .unwrap_or_default(),
            checks,
            detail: PlanDetail::Recovery(RecoveryPreviewView {
                hosts,
                rollback_run: offer.as_ref().map(|o| o.run.id.0),
                rollback_title: offer.map(|o| o.run.title),
                rollback_included: false,
                ready_timeout_seconds: READY_TIMEOUT.as_secs(),
            }),
            ..Plan::new(
                cluster,
                Workflow::ApiserverRecover,
                title,
                serde_json::json!({}),
            )
        }))
    }

    /// The recovery a confirmed start runs: the preview made again; with `rollback`, the
    /// offered install's rollback follows the restart in the same run; without, the run only
    /// restarts (its page then offers the rollback as a run of its own).
    async fn prepare_recovery(
        &self,
        cluster: &ClusterName,
        rollback: bool,
    ) -> Result<Launch, RunError> {
        let mut plan = self.plan_recovery(cluster).await?;
        let PlanDetail::Recovery(mut preview) = plan.detail.clone() else {
            return Err(RunError::Corrupt(
                "a recovery planned without its preview".into(),
            ));
        };
        let mut hosts = Vec::new();
        let mut steps = Vec::new();
        for h in &preview.hosts {
            let node = NodeName::parse(&h.node).map_err(|e| RunError::Corrupt(e.to_string()))?;
            let address = Endpoint::address_in(&h.endpoint);
            let endpoint = self.inner().ssh.endpoint(cluster, &node, address)?;
            steps.push(format!("look at {node}"));
            steps.push(format!("restart the kube-apiserver on {node}"));
            hosts.push((endpoint, h.host_key.clone()));
        }
        steps.push("wait for /readyz".to_owned());
        for h in &preview.hosts {
            steps.push(format!("verify the kube-apiserver on {}", h.node));
        }
        let target = preview.rollback_run.filter(|_| rollback).map(RunId);
        match target {
            Some(t) => {
                steps.extend(super::cni::ROLLBACK_STEPS.map(|s| rollback_step(t, s)));
                preview.rollback_included = true;
            }
            None => {
                // Restart only: what runs, and what is stored, has no rollback in it; the
                // hash stays the one the user confirmed (of the offer).
                plan.objects.clear();
                preview.rollback_run = None;
                preview.rollback_title = None;
            }
        }
        plan.detail = PlanDetail::Recovery(preview.clone());
        let params = serde_json::to_value(RecoveryParams {
            hosts,
            ready_timeout_seconds: preview.ready_timeout_seconds,
            rollback: target,
        })
        .map_err(RunError::Encode)?;
        Ok(Launch {
            links: target.map(|t| ("rollback_of", t)).into_iter().collect(),
            ..Launch::new(plan, params, steps)
        })
    }

    /// The check that the API server does not answer, from a fresh probe (a cached answer
    /// from before the failure would say it answers).
    async fn apiserver_down(&self, name: &ClusterName) -> Result<CheckView, RunError> {
        let status = self.inner().clusters.status_now(name).await;
        Ok(match status.map(|s| s.reachability) {
            None => return Err(RunError::UnknownCluster(name.to_string())),
            Some(Reachability::Reachable { version, .. }) => check(
                "apiserver",
                Level::Fail,
                format!("the API server answers ({version}): there is nothing to recover"),
            ),
            Some(Reachability::Unreachable { error }) => {
                tracing::info!(cluster = %name, error, "recovery planned: the API server does not answer");
                check("apiserver", Level::Pass, "the API server does not answer")
            }
        })
    }

    /// The control-plane hosts as last seen, each with its pinned key, checked over SSH.
    async fn control_plane_hosts(
        &self,
        name: &ClusterName,
        checks: &mut Vec<CheckView>,
    ) -> Result<Vec<RecoveryHostView>, RunError> {
        let inner = self.inner();
        let control_planes = self.control_planes(name).await?;
        if control_planes.is_empty() {
            checks.push(check(
                "control-plane",
                Level::Fail,
                "no control-plane node is known for this cluster (Grappe never saw its node list)",
            ));
        }
        let mut hosts = Vec::new();
        for (node, ip) in control_planes {
            let Ok(node) = NodeName::parse(&node) else {
                continue;
            };
            let endpoint = match inner.ssh.endpoint(name, &node, ip.as_deref()) {
                Err(e) => {
                    checks.push(check("ssh", Level::Fail, e.to_string()));
                    continue;
                }
                Ok(endpoint) => endpoint,
            };
            let key = inner.ssh.pinned(&endpoint).await?;
            let host_key = key.map(|k| k.fingerprint).unwrap_or_default();
            checks.push(if host_key.is_empty() {
                check(
                    "host-key",
                    Level::Fail,
                    format!("no trusted host key for {node}: check the host from its page and trust its key first"),
                )
            } else {
                match inner.ssh.connect(&endpoint).await {
                    Ok(s) => {
                        s.close().await;
                        let shown = endpoint.display();
                        check("ssh", Level::Pass, format!("{shown} answers with the pinned key"))
                    }
                    Err(e) => check("ssh", Level::Fail, crate::audit::error_chain(&e)),
                }
            });
            hosts.push(RecoveryHostView {
                node: node.to_string(),
                endpoint: endpoint.display(),
                host_key,
            });
        }
        Ok(hosts)
    }

    /// The most recent succeeded CNI install of `cluster` that no later run rolled back, if
    /// it changed anything.
    async fn rollback_offer(&self, cluster: &ClusterName) -> Result<Option<Offer>, RunError> {
        let runs = self
            .inner()
            .store
            .runs(Some(cluster.as_str()), None, 200)
            .await?;
        let mut undone = BTreeSet::new();
        for run in runs
            .into_iter()
            .filter(|r| r.status == RunStatus::Succeeded)
        {
            match run.workflow {
                Workflow::CniInstall if !undone.contains(&run.id) => {
                    let objects = self.rollback_from_snapshots(run.id).await?;
                    return Ok((!objects.is_empty()).then_some(Offer { run, objects }));
                }
                Workflow::CniRollback => {
                    let params: serde_json::Value = super::run_params(&run)?;
                    if let Some(t) = params.get("run").and_then(serde_json::Value::as_i64) {
                        undone.insert(RunId(t));
                    }
                }
                Workflow::ApiserverRecover => {
                    let params: RecoveryParams = super::run_params(&run)?;
                    undone.extend(params.rollback);
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

/// `apiserver.recover`: a lost kube-apiserver restarted over SSH (admin). It runs while the
/// API server is down, so it takes no Lease.
pub(crate) struct Recover;

impl Kind for Recover {
    fn id(&self) -> Workflow {
        Workflow::ApiserverRecover
    }

    fn policy(&self) -> Policy {
        Policy {
            lease: false,
            ..Policy::ADMIN
        }
    }

    fn prepare<'a>(
        &'a self,
        runs: &'a Runs,
        cluster: &'a ClusterName,
        _request: &'a serde_json::Value,
        offer: bool,
    ) -> Preparing<'a> {
        Box::pin(runs.prepare_recovery(cluster, offer))
    }

    fn executor<'a>(&'a self, at: Load<'a>) -> Loading<'a> {
        loading(std::future::ready(RecoveryContext::load(
            at.runs, at.run, at.cancel,
        )))
    }
}
