//! Node reset (admin): the seed's `kubeadm reset` and the cleanup it leaves to you, as a run.
//!
//! Steps: a second admin's approval when the cluster's two-person rule is on; a drain first
//! (reusing the drain workflow, with the seed's flags) unless the node is already cordoned or
//! not Ready; `kubeadm reset -f`; `rm -rf /etc/cni/net.d`; iptables flushed and its chains
//! deleted (filter, nat, mangle); `ipvsadm --clear`; optionally `$HOME/.kube/config` and
//! `/var/lib/cni` removed and the Node object deleted; a final check that lists what is left
//! on the host. Each remote step is a fixed script ([`crate::ssh::commands`]) over SSH with the
//! host key pinned at plan time; its output is streamed into the step. kubeadm's warnings
//! (and anything left on the host) are the run's warnings: it ends "completed with warnings",
//! never plain success. The control-plane node is refused unless the admin chose to reset the
//! cluster, confirmed by typing `reset cluster <name>`.

use grappe_views::runs::{DrainOptions, PlanDetail, ResetOptions, ResetPreviewView};
use grappe_views::vocab::Level;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use serde::{Deserialize, Serialize};

use super::drain::{DrainParams, call};
use super::registry::{Kind, Load, Loading, Policy, Preparing, loading, request};
use super::{RunError, RunId, Runs, Workflow, check, sealed};
use crate::audit::{Action, AuditEntry, Caller, Outcome, Target};
use crate::model::Plan;
use crate::names::{ClusterName, NodeName};
use crate::runs::Launch;
use crate::ssh::{Endpoint, commands};
use crate::state::model::NodeInfo;

/// The approval step's name.
pub const APPROVAL_STEP: &str = "approval by a second admin";

/// What a reset is planned from: the node and the options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRequest {
    pub node: NodeName,
    pub options: ResetOptions,
}

/// A reset run's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetParams {
    pub node: NodeName,
    pub options: ResetOptions,
    pub endpoint: Endpoint,
    /// The host key fingerprint seen at plan time; the run refuses any other.
    pub host_key: String,
    /// The drain that runs first, if any.
    pub drain: Option<DrainOptions>,
}

impl Runs {
    /// Previews a node reset: where the host is reached and with which key, whether a drain
    /// comes first, the steps, and the checks (the control-plane node, an untrusted host key or
    /// an unreachable host fail it).
    ///
    /// # Errors
    /// An invalid node name, an unknown cluster, API errors.
    pub async fn plan_reset(
        &self,
        cluster: &ClusterName,
        request: &ResetRequest,
    ) -> Result<Plan, RunError> {
        let (name, opts) = (&request.node, &request.options);
        let client = self.client_of(cluster).await?;
        let api: Api<Node> = Api::all(client);
        let info = api
            .get_opt(name.as_str())
            .await
            .map_err(call("get", format!("node {name}")))?
            .and_then(NodeInfo::from_node);
        let mut checks = Vec::new();
        let Some(info) = info else {
            return Err(RunError::UnknownNode {
                node: name.to_string(),
                cluster: cluster.to_string(),
            });
        };
        let control_plane = info.roles.iter().any(|r| r == "control-plane");
        match (control_plane, opts.reset_cluster) {
            (true, false) => checks.push(check(
                "control-plane",
                Level::Fail,
                format!("{name} is the control plane: resetting it resets the cluster. Choose \"reset the cluster\" to go on."),
            )),
            (true, true) => checks.push(check(
                "control-plane",
                Level::Warn,
                format!("resetting {name} resets the cluster: its API server, etcd data and certificates are removed"),
            )),
            (false, true) => checks.push(check(
                "control-plane",
                Level::Fail,
                format!("{name} is not a control-plane node: \"reset the cluster\" does not apply"),
            )),
            (false, false) => {}
        }
        if opts.reset_cluster && opts.delete_node {
            checks.push(check(
                "delete-node",
                Level::Fail,
                "the Node object cannot be deleted once the cluster itself is reset",
            ));
        }
        let ssh = &self.inner().ssh;
        let approval = ssh.two_person_reset(cluster);
        let endpoint = ssh.endpoint(cluster, name, info.internal_ip())?;
        let pinned = ssh.pinned(&endpoint).await?;
        let host_key = match &pinned {
            None => {
                checks.push(check(
                    "host-key",
                    Level::Fail,
                    format!("no trusted host key for {name}: check the host from its page and trust its key first"),
                ));
                String::new()
            }
            Some(k) => {
                // The host must answer with that key, and accept Grappe's, now.
                match ssh.connect(&endpoint).await {
                    Ok(session) => {
                        session.close().await;
                        checks.push(check(
                            "ssh",
                            Level::Pass,
                            format!(
                                "{} answers with the pinned key {}",
                                endpoint.display(),
                                k.fingerprint
                            ),
                        ));
                    }
                    Err(e) => checks.push(check("ssh", Level::Fail, crate::audit::error_chain(&e))),
                }
                k.fingerprint.clone()
            }
        };
        // Drained already: cordoned with nothing left to evict. A NotReady node is not drained
        // (its pods cannot leave gracefully; kubeadm reset removes them).
        let drain = if info.is_ready() {
            let drain = DrainParams {
                nodes: vec![name.clone()],
                options: DrainOptions::default(),
            };
            Some(self.plan_drain(cluster, &drain).await?)
        } else {
            None
        };
        let drain_first = drain
            .as_ref()
            .is_some_and(|d| !info.unschedulable || !d.objects.is_empty());
        if let Some(drain) = drain.filter(|_| drain_first) {
            // The drain's own preview: blocked pods fail the reset's plan too, and budgets at
            // zero are named before anything starts.
            for c in drain.checks.into_iter().filter(|c| c.id != "control-plane") {
                checks.push(grappe_views::runs::CheckView {
                    id: format!("drain-{}", c.id),
                    ..c
                });
            }
        } else {
            checks.push(check(
                "drain",
                Level::Pass,
                format!(
                    "{name} is {} with nothing left to evict: no drain first",
                    info.status_text()
                ),
            ));
        }
        if approval {
            checks.push(check(
                "two-person",
                Level::Warn,
                "a second admin must approve the run before anything is done",
            ));
        }
        let mut flags = vec![("node".to_owned(), name.to_string())];
        for (on, flag) in [
            (opts.remove_kubeconfig, "remove $HOME/.kube/config"),
            (opts.remove_cni_state, "remove /var/lib/cni"),
            (opts.delete_node, "delete the Node object"),
            (opts.reset_cluster, "reset the cluster"),
        ] {
            if on {
                flags.push((flag.to_owned(), "yes".to_owned()));
            }
        }
        let request_json = serde_json::to_value(request).map_err(RunError::Encode)?;
        Ok(sealed(Plan {
            options: flags,
            checks,
            detail: PlanDetail::Reset(ResetPreviewView {
                node: name.to_string(),
                endpoint: endpoint.display(),
                host_key,
                control_plane,
                node_status: info.status_text(),
                drain_first,
                options: opts.clone(),
                approval,
            }),
            // The node's name (the cluster's when the cluster itself is reset).
            confirm: if opts.reset_cluster {
                format!("reset cluster {cluster}")
            } else {
                name.to_string()
            },
            ..Plan::new(
                cluster,
                Workflow::NodeReset,
                format!("reset {name}"),
                request_json,
            )
        }))
    }

    /// The reset a confirmed request starts: the preview made again, the host reached as it
    /// planned with the key it pinned.
    async fn prepare_reset(
        &self,
        cluster: &ClusterName,
        request: &ResetRequest,
    ) -> Result<Launch, RunError> {
        let plan = self.plan_reset(cluster, request).await?;
        let PlanDetail::Reset(preview) = plan.detail.clone() else {
            return Err(RunError::Corrupt(
                "a reset planned without its preview".into(),
            ));
        };
        let name = &request.node;
        let endpoint =
            self.inner()
                .ssh
                .endpoint(cluster, name, Endpoint::address_in(&preview.endpoint))?;
        let drain = preview.drain_first.then(DrainOptions::default);
        let steps = steps(name, &preview, drain.is_some());
        let params = serde_json::to_value(ResetParams {
            node: name.clone(),
            options: request.options.clone(),
            endpoint,
            host_key: preview.host_key.clone(),
            drain,
        })
        .map_err(RunError::Encode)?;
        Ok(Launch {
            node: Some(preview.node.clone()),
            ..Launch::new(plan, params, steps)
        })
    }

    /// Why `approver` is not a second person for `run`: the run's actor made them an admin, or
    /// they became one after the run started (so one person cannot create the approver).
    async fn not_independent(
        &self,
        run: &crate::model::RunRow,
        approver: &str,
    ) -> Result<Option<String>, RunError> {
        let started = crate::time::Timestamp::parse(&run.started_at).ok();
        let grants = self.inner().store.admin_grants(approver).await?;
        Ok(grants.iter().find_map(|(actor, at)| {
            let after_start = started
                .zip(crate::time::Timestamp::parse(at).ok())
                .is_some_and(|(s, a)| a.unix_micros() >= s.unix_micros());
            if *actor == run.actor {
                Some(format!("{actor}, who started the run, made them an admin"))
            } else if after_start {
                Some(format!(
                    "they became an admin after the run started ({at}, by {actor})"
                ))
            } else {
                None
            }
        }))
    }

    /// A second admin approves a run waiting for it (two-person rule). The run's own actor
    /// cannot approve it, nor an admin it made, nor one made after the run started. Audited
    /// (`run.approve`).
    ///
    /// # Errors
    /// [`RunError::UnknownRun`], [`RunError::WrongStatus`] when the run does not wait for an
    /// approval, [`RunError::NotConfirmed`] when its actor tries, [`RunError::NotIndependent`].
    pub async fn approve(&self, caller: &Caller, id: RunId) -> Result<(), RunError> {
        let run = self.load(id).await?;
        let waiting = self
            .inner()
            .store
            .run_steps(id)
            .await?
            .iter()
            .any(|s| s.name == APPROVAL_STEP && s.status != super::StepStatus::Done);
        if run.status != super::RunStatus::Running || !waiting {
            return Err(RunError::WrongStatus {
                id,
                status: run.status.as_str(),
                expected: "running and waiting for an approval",
            });
        }
        let target = Target {
            cluster: Some(run.cluster.to_string()),
            node: None,
            object: Some(format!("run/{}", id.0)),
        };
        if run.actor == caller.actor {
            let entry = AuditEntry::new(caller, Action::RunApprove, target, Outcome::Denied)
                .detail("error", "the run's own actor cannot approve it");
            let _ = self.inner().audit.append(entry).await;
            return Err(RunError::NotConfirmed(
                "a second admin (not the one who started the run)".into(),
            ));
        }
        if let Some(why) = self.not_independent(&run, &caller.actor).await? {
            let entry = AuditEntry::new(caller, Action::RunApprove, target, Outcome::Denied)
                .detail("error", why.clone());
            let _ = self.inner().audit.append(entry).await;
            return Err(RunError::NotIndependent {
                approver: caller.actor.clone(),
                why,
            });
        }
        let entry = AuditEntry::new(caller, Action::RunApprove, target, Outcome::Success)
            .detail("workflow", run.workflow.as_str())
            .detail("title", run.title.clone());
        self.inner()
            .audit
            .append(entry)
            .await
            .map_err(RunError::AuditUnavailable)?;
        self.inner().store.approve_run(id, &caller.actor).await?;
        self.bump();
        Ok(())
    }
}

mod steps;

pub(crate) use steps::ResetContext;

/// The steps of a reset, in order.
fn steps(node: &NodeName, preview: &ResetPreviewView, drain: bool) -> Vec<String> {
    let mut steps = Vec::new();
    if preview.approval {
        steps.push(APPROVAL_STEP.to_owned());
    }
    if drain {
        steps.push(format!("cordon {node}"));
        steps.push(format!("drain {node}"));
    }
    for script in [
        commands::KUBEADM_RESET,
        commands::REMOVE_CNI_CONFIG,
        commands::FLUSH_IPTABLES,
        commands::CLEAR_IPVS,
    ] {
        steps.push(script.name().to_owned());
    }
    if preview.options.remove_kubeconfig {
        steps.push(commands::REMOVE_KUBECONFIG.name().to_owned());
    }
    if preview.options.remove_cni_state {
        steps.push(commands::REMOVE_CNI_STATE.name().to_owned());
    }
    if preview.options.delete_node {
        steps.push(format!("delete node {node}"));
    }
    steps.push(commands::LEFTOVERS.name().to_owned());
    steps
}

/// Whether a line of kubeadm's output is one of its warnings: klog warnings (`W0407 ...`) and
/// the paragraphs about what it leaves behind.
pub fn is_kubeadm_warning(line: &str) -> bool {
    let b = line.as_bytes();
    (b.len() > 5 && b[0] == b'W' && b[1..5].iter().all(u8::is_ascii_digit))
        || line.starts_with("The reset process does not")
}

/// `node.reset`: kubeadm reset and the cleanup over SSH (admin).
pub(crate) struct Reset;

impl Kind for Reset {
    fn id(&self) -> Workflow {
        Workflow::NodeReset
    }

    fn policy(&self) -> Policy {
        Policy {
            approval: Some(APPROVAL_STEP),
            password_always: true,
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
        Box::pin(async move { runs.prepare_reset(cluster, &request(req)?).await })
    }

    fn executor<'a>(&'a self, at: Load<'a>) -> Loading<'a> {
        loading(std::future::ready(ResetContext::load(
            at.runs, at.run, at.cancel,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_warnings_are_recognised() {
        assert!(is_kubeadm_warning(
            "W0407 02:30:51.874637  313090 reset.go:106] [reset] Unable to fetch"
        ));
        assert!(is_kubeadm_warning(
            "The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d"
        ));
        assert!(!is_kubeadm_warning("[reset] Stopping the kubelet service"));
        assert!(!is_kubeadm_warning("Warning"));
    }
}
