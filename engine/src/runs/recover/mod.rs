//! Recovery of a lost kube-apiserver (admin), the seed's troubleshooting as a run that needs
//! only SSH: look at the control-plane host (kubelet status, the kube-apiserver container, the
//! static-pod manifests), restart the kube-apiserver the kubeadm way (`touch` its manifest,
//! `systemctl restart kubelet`), wait for `/readyz` with a timeout, and verify that the
//! container runs again. The plan names the most recent CNI install, which the run's page then
//! offers to roll back (the install/rollback workflow, once the API server answers).
//!
//! The run cannot take the cluster's `grappe-workflow` Lease (the API server is down): the
//! database's one-active-run-per-cluster index is its only guard, and it is planned only while
//! the API server does not answer.

use std::time::{Duration, Instant};

use grappe_views::runs::{PlanView, RecoveryHostView, RecoveryPreviewView};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::k8s::KubeError;
use super::registry::{Executor, Kind, Policy};
use super::{Confirmation, RunError, RunId, RunStatus, Runs, Workflow, check, sealed};
use crate::audit::Caller;
use crate::clusters::Reachability;
use crate::model::RunRow;
use crate::names::NodeName;
use crate::runs::Launch;
use crate::ssh::{Endpoint, Output, Script, commands};
use crate::users::Role;
use futures::future::BoxFuture;

/// How long the run waits for `/readyz` after the restart.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A recovery run's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryParams {
    /// The control-plane hosts with the host key each must present.
    pub hosts: Vec<(Endpoint, String)>,
    pub ready_timeout_seconds: u64,
}

impl Runs {
    /// Previews the recovery of a cluster whose API server does not answer.
    ///
    /// # Errors
    /// An unknown cluster, the database.
    pub async fn plan_recovery(&self, cluster: &str) -> Result<PlanView, RunError> {
        let name = super::cluster_name(cluster)?;
        let inner = self.inner();
        let mut checks = Vec::new();
        // A fresh probe: a cached answer from before the failure would say it answers.
        match inner
            .clusters
            .status_now(&name)
            .await
            .map(|s| s.reachability)
        {
            None => return Err(RunError::UnknownCluster(cluster.to_owned())),
            Some(Reachability::Reachable { version, .. }) => checks.push(check(
                "apiserver",
                "fail",
                format!("the API server answers ({version}): there is nothing to recover"),
            )),
            Some(Reachability::Unreachable { error }) => {
                tracing::info!(
                    cluster,
                    error,
                    "recovery planned: the API server does not answer"
                );
                checks.push(check("apiserver", "pass", "the API server does not answer"));
            }
        }
        let state = inner.states.get(&name);
        // The control-plane nodes as last seen.
        let control_planes: Vec<(String, Option<String>)> = state
            .as_ref()
            .map(|s| {
                s.nodes_page(&grappe_views::NodesQuery {
                    role: "control-plane".to_owned(),
                    per_page: grappe_views::MAX_PER_PAGE,
                    ..Default::default()
                })
                .rows
                .into_iter()
                .map(|r| (r.name, r.internal_ip))
                .collect()
            })
            .unwrap_or_default();
        if control_planes.is_empty() {
            checks.push(check(
                "control-plane",
                "fail",
                "no control-plane node is known for this cluster (Grappe never saw its node list)",
            ));
        }
        let mut hosts = Vec::new();
        for (node, ip) in control_planes {
            let Ok(node) = NodeName::parse(&node) else {
                continue;
            };
            match inner.ssh.endpoint(&name, &node, ip.as_deref()) {
                Err(e) => checks.push(check("ssh", "fail", e.to_string())),
                Ok(endpoint) => {
                    let key = inner.ssh.pinned(&endpoint).await?;
                    let host_key = key.map(|k| k.fingerprint).unwrap_or_default();
                    if host_key.is_empty() {
                        checks.push(check(
                            "host-key",
                            "fail",
                            format!("no trusted host key for {node}: check the host from its page and trust its key first"),
                        ));
                    } else {
                        match inner.ssh.connect(&endpoint).await {
                            Ok(s) => {
                                s.close().await;
                                checks.push(check(
                                    "ssh",
                                    "pass",
                                    format!("{} answers with the pinned key", endpoint.display()),
                                ));
                            }
                            Err(e) => {
                                checks.push(check("ssh", "fail", crate::audit::error_chain(&e)))
                            }
                        }
                    }
                    hosts.push(RecoveryHostView {
                        node: node.to_string(),
                        endpoint: endpoint.display(),
                        host_key,
                    });
                }
            }
        }
        let install = inner
            .store
            .runs(Some(cluster), Some("cni.install"), 20)
            .await?
            .into_iter()
            .find(|r| r.status == RunStatus::Succeeded);
        if let Some(r) = &install {
            checks.push(check(
                "rollback",
                "warn",
                format!("once the API server answers, the run offers to roll back the most recent CNI install: run {} ({})", r.id, r.title),
            ));
        }
        Ok(sealed(PlanView {
            cluster: cluster.to_owned(),
            workflow: Workflow::ApiserverRecover.as_str().to_owned(),
            title: "recover the kube-apiserver".to_owned(),
            manifest_source: None,
            manifest_sha256: None,
            verified: false,
            options: hosts
                .iter()
                .map(|h| {
                    (
                        "control plane".to_owned(),
                        format!("{} ({})", h.node, h.endpoint),
                    )
                })
                .collect(),
            objects: Vec::new(),
            checks,
            drain: None,
            reset: None,
            recovery: Some(RecoveryPreviewView {
                hosts,
                rollback_run: install.as_ref().map(|r| r.id.0),
                rollback_title: install.map(|r| r.title),
                ready_timeout_seconds: READY_TIMEOUT.as_secs(),
            }),
            hash: String::new(),
        }))
    }

    /// Starts a previewed recovery (the cluster's name typed).
    ///
    /// # Errors
    /// As [`Runs::plan_recovery`], plus confirmation, a changed preview, failed checks.
    pub async fn start_recovery(
        &self,
        caller: &Caller,
        cluster: &str,
        expected_hash: &str,
        confirmation: Confirmation,
    ) -> Result<RunId, RunError> {
        let plan = self.plan_recovery(cluster).await?;
        let preview = plan
            .recovery
            .clone()
            .ok_or_else(|| RunError::Step("not a recovery plan".into()))?;
        let name = super::cluster_name(cluster)?;
        let mut hosts = Vec::new();
        let mut steps = Vec::new();
        for h in &preview.hosts {
            let node = NodeName::parse(&h.node).map_err(|e| RunError::Step(e.to_string()))?;
            let address = Endpoint::address_in(&h.endpoint);
            let endpoint = self.inner().ssh.endpoint(&name, &node, address)?;
            steps.push(format!("look at {node}"));
            steps.push(format!("restart the kube-apiserver on {node}"));
            hosts.push((endpoint, h.host_key.clone()));
        }
        steps.push("wait for /readyz".to_owned());
        for h in &preview.hosts {
            steps.push(format!("verify the kube-apiserver on {}", h.node));
        }
        let params = serde_json::to_value(RecoveryParams {
            hosts,
            ready_timeout_seconds: preview.ready_timeout_seconds,
        })
        .map_err(|e| RunError::Step(e.to_string()))?;
        self.launch(
            caller,
            Launch::new(plan, params, steps),
            expected_hash,
            confirmation,
        )
        .await
    }
}

/// Executes a recovery run's steps.
pub(crate) struct RecoveryContext {
    runs: Runs,
    run: RunRow,
    params: RecoveryParams,
    cancel: watch::Receiver<bool>,
}

impl RecoveryContext {
    pub(crate) fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let params: RecoveryParams = super::run_params(run)?;
        Ok(Self {
            runs: runs.clone(),
            run: run.clone(),
            params,
            cancel,
        })
    }

    async fn say(&self, idx: i64, line: &str) -> Result<(), RunError> {
        self.runs.say(self.run.id, idx, line).await
    }

    async fn step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
        if name == "wait for /readyz" {
            return self.wait_ready(idx).await;
        }
        for (endpoint, key) in self.params.hosts.clone() {
            let node = endpoint.node.as_str();
            let script = if name == format!("look at {node}") {
                commands::APISERVER_LOOK
            } else if name == format!("restart the kube-apiserver on {node}") {
                commands::APISERVER_RESTART
            } else if name == format!("verify the kube-apiserver on {node}") {
                commands::APISERVER_RUNNING
            } else {
                continue;
            };
            let out = self.remote(idx, &endpoint, &key, &script).await?;
            if out.success() {
                if script == commands::APISERVER_RUNNING {
                    self.say(idx, "the kube-apiserver container runs again")
                        .await?;
                }
                return Ok(());
            }
            let why = if script == commands::APISERVER_LOOK {
                "/etc/kubernetes/manifests/kube-apiserver.yaml is missing: the kubelet has no static pod to restart"
            } else if script == commands::APISERVER_RUNNING {
                "the kube-apiserver container is not running"
            } else {
                "the restart failed"
            };
            return Err(RunError::Step(format!(
                "{node}: {why} (`{}` exited with {})",
                script.name(),
                out.exit
                    .map_or_else(|| "no status".to_owned(), |c| c.to_string())
            )));
        }
        Err(RunError::Step(format!("unknown step {name}")))
    }

    async fn remote(
        &self,
        idx: i64,
        endpoint: &Endpoint,
        key: &str,
        script: &Script,
    ) -> Result<Output, RunError> {
        let session = self.runs.inner().ssh.connect_planned(endpoint, key).await?;
        self.say(idx, &format!("$ {}", script.name())).await?;
        let mut text = String::new();
        let out = session.run(script, |t| text.push_str(t)).await;
        session.close().await;
        let text = text.trim_end();
        if !text.is_empty() {
            self.say(idx, text).await?;
        }
        Ok(out?)
    }

    /// Polls `/readyz` every 2 s until it answers `ok` or the timeout passes.
    async fn wait_ready(&mut self, idx: i64) -> Result<(), RunError> {
        let name = super::cluster_name(&self.run.cluster)?;
        let started = Instant::now();
        let timeout = Duration::from_secs(self.params.ready_timeout_seconds);
        let mut said = Duration::ZERO;
        loop {
            if *self.cancel.borrow() {
                return Err(RunError::Kube(KubeError::Cancelled));
            }
            let answer = match self.runs.inner().clusters.client(&name).await {
                Ok(client) => {
                    let req = http::Request::get("/readyz").body(Vec::new());
                    match req {
                        Ok(req) => client.request_text(req).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(crate::audit::error_chain(&e)),
            };
            let last = match answer {
                Ok(body) if body.trim() == "ok" => {
                    return self
                        .say(
                            idx,
                            &format!("/readyz: ok after {} s", started.elapsed().as_secs()),
                        )
                        .await;
                }
                Ok(body) => body.lines().last().unwrap_or_default().to_owned(),
                Err(e) => e,
            };
            let elapsed = started.elapsed();
            if elapsed >= timeout {
                return Err(RunError::Step(format!(
                    "/readyz did not answer ok within {} s: {last}",
                    timeout.as_secs()
                )));
            }
            if elapsed >= said + Duration::from_secs(10) {
                said = elapsed;
                self.say(
                    idx,
                    &format!("waiting for /readyz ({} s): {last}", elapsed.as_secs()),
                )
                .await?;
            }
            let mut cancel = self.cancel.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = cancel.changed() => {}
            }
        }
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
            roll_back: false,
            control: Role::Admin,
            start: Role::Admin,
        }
    }

    fn executor<'a>(
        &'a self,
        runs: &'a Runs,
        run: &'a RunRow,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<Box<dyn Executor>, RunError>> {
        Box::pin(async move {
            Ok(Box::new(RecoveryContext::load(runs, run, cancel)?) as Box<dyn Executor>)
        })
    }
}

impl Executor for RecoveryContext {
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(self.step(idx, name))
    }
}
