//! The steps of a recovery: look, restart and verify over SSH, wait for `/readyz`, then, when
//! the plan included it, the rollback of the install that broke the API server (the CNI
//! rollback's own steps).

use std::time::Duration;

use crate::runs::step::{Next, StepCx, Wait};

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{RecoveryParams, rollback_step};
use crate::model::RunRow;
use crate::runs::cni::StepContext as CniSteps;
use crate::runs::registry::Executor;
use crate::runs::{Failure, RunError, RunId, Runs, exit_text};
use crate::ssh::{Endpoint, Output, Script, commands};

/// Executes a recovery run's steps.
pub(crate) struct RecoveryContext {
    cx: StepCx,
    params: RecoveryParams,
    /// The CNI rollback's executor, made when its first step comes (the API server answers).
    rollback: Option<CniSteps>,
}

impl RecoveryContext {
    pub(crate) fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let params: RecoveryParams = crate::runs::run_params(run)?;
        Ok(Self {
            cx: StepCx::new(runs, run, cancel),
            params,
            rollback: None,
        })
    }

    async fn step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
        if let Some((target, step)) = self.rollback_of(name) {
            return self.roll_back(target, idx, step).await;
        }
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
                    self.cx
                        .say(idx, "the kube-apiserver container runs again")
                        .await?;
                }
                return Ok(());
            }
            let (node, script_name, exit) = (
                node.to_string(),
                script.name().to_owned(),
                exit_text(out.exit),
            );
            return Err(if script == commands::APISERVER_LOOK {
                Failure::ApiserverManifestMissing {
                    node,
                    script: script_name,
                    exit,
                }
            } else if script == commands::APISERVER_RUNNING {
                Failure::ApiserverNotRunning {
                    node,
                    script: script_name,
                    exit,
                }
            } else {
                Failure::ScriptFailed {
                    node,
                    script: script_name,
                    exit,
                }
            }
            .into());
        }
        Err(RunError::Corrupt(format!("unknown step {name}")))
    }

    /// The rollback step `name` stands for, with the run it rolls back.
    fn rollback_of<'n>(&self, name: &'n str) -> Option<(RunId, &'n str)> {
        let target = self.params.rollback?;
        crate::runs::cni::ROLLBACK_STEPS
            .into_iter()
            .find(|s| rollback_step(target, s) == name)
            .map(|_| (target, name.rsplit(": ").next().unwrap_or(name)))
    }

    /// One of the CNI rollback's steps, run by the rollback's own executor.
    async fn roll_back(&mut self, target: RunId, idx: i64, step: &str) -> Result<(), RunError> {
        if self.rollback.is_none() {
            let steps =
                CniSteps::rollback_of(&self.cx.runs, &self.cx.run, target, self.cx.cancel.clone())
                    .await?;
            self.rollback = Some(steps);
        }
        match self.rollback.as_mut() {
            Some(steps) => steps.step(idx, step).await,
            None => Err(RunError::Corrupt(format!("no rollback of run {target}"))),
        }
    }

    async fn remote(
        &self,
        idx: i64,
        endpoint: &Endpoint,
        key: &str,
        script: &Script,
    ) -> Result<Output, RunError> {
        let session = self
            .cx
            .runs
            .inner()
            .ssh
            .connect_planned(endpoint, key)
            .await?;
        self.cx.say(idx, &format!("$ {}", script.name())).await?;
        let mut text = String::new();
        let out = session.run(script, |t| text.push_str(t)).await;
        session.close().await;
        let text = text.trim_end();
        if !text.is_empty() {
            self.cx.say(idx, text).await?;
        }
        Ok(out?)
    }

    /// Asks `/readyz` every 2 s until it answers `ok` or the timeout passes.
    async fn wait_ready(&mut self, idx: i64) -> Result<(), RunError> {
        let name = self.cx.run.cluster.clone();
        let timeout = Duration::from_secs(self.params.ready_timeout_seconds);
        let wait = Wait::new("/readyz", Duration::from_secs(2))
            .timeout(timeout)
            .report_every(Duration::from_secs(10));
        let mut waiter = self.cx.waiter(idx, wait);
        loop {
            let answer = match self.cx.runs.inner().clusters.client(&name).await {
                Ok(client) => match http::Request::get("/readyz").body(Vec::new()) {
                    Ok(req) => client.request_text(req).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(crate::audit::error_chain(&e)),
            };
            let last = match answer {
                Ok(body) if body.trim() == "ok" => {
                    let secs = waiter.elapsed().as_secs();
                    return self
                        .cx
                        .say(idx, &format!("/readyz: ok after {secs} s"))
                        .await;
                }
                Ok(body) => body.lines().last().unwrap_or_default().to_owned(),
                Err(e) => e,
            };
            if let Next::TimedOut(last) = waiter.not_yet(last).await? {
                return Err(Failure::ReadyzTimeout {
                    seconds: timeout.as_secs(),
                    last,
                    rollback: self.params.rollback,
                }
                .into());
            }
        }
    }
}

impl Executor for RecoveryContext {
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(self.step(idx, name))
    }
}
