//! The steps of a node reset: approval, drain, the fixed scripts over SSH, the Node deleted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams};
use tokio::sync::watch;

use super::*;
use crate::model::RunRow;
use crate::runs::drain::{DrainContext, DrainParams, call};
use crate::runs::registry::Executor;
use crate::runs::step::{Next, StepCx, Wait};
use crate::runs::{Failure, RunError, Runs, exit_text};
use crate::ssh::{Output, Script, Session, commands};
use futures::future::BoxFuture;

/// Executes a reset run's steps.
pub(crate) struct ResetContext {
    cx: StepCx,
    params: ResetParams,
    session: Option<Arc<Session>>,
}

impl ResetContext {
    pub(crate) fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let params: ResetParams = crate::runs::run_params(run)?;
        Ok(Self {
            cx: StepCx::new(runs, run, cancel),
            params,
            session: None,
        })
    }

    async fn step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
        let node = self.params.node.clone();
        if name == APPROVAL_STEP {
            return self.await_approval(idx).await;
        }
        if name == format!("cordon {node}") || name == format!("drain {node}") {
            let params = DrainParams {
                nodes: vec![node],
                options: self.params.drain.clone().unwrap_or_default(),
            };
            let mut drain = DrainContext::with_params(
                &self.cx.runs,
                &self.cx.run,
                params,
                self.cx.cancel.clone(),
            )
            .await?;
            return drain.step(idx, name).await;
        }
        if name == format!("delete node {node}") {
            let client = self.cx.runs.client_of(&self.cx.run.cluster).await?;
            let api: Api<Node> = Api::all(client);
            return match api.delete(node.as_str(), &DeleteParams::default()).await {
                Ok(_) => self.cx.say(idx, &format!("node/{node} deleted")).await,
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    self.cx
                        .say(idx, &format!("node/{node} was already gone"))
                        .await
                }
                Err(e) => Err(call("delete", format!("node {node}"))(e)),
            };
        }
        let script = [
            commands::KUBEADM_RESET,
            commands::REMOVE_CNI_CONFIG,
            commands::FLUSH_IPTABLES,
            commands::CLEAR_IPVS,
            commands::REMOVE_KUBECONFIG,
            commands::REMOVE_CNI_STATE,
            commands::LEFTOVERS,
        ]
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| RunError::Corrupt(format!("unknown step {name}")))?;
        let out = self.remote(idx, &script).await?;
        if script == commands::KUBEADM_RESET {
            let mut seen = std::collections::BTreeSet::new();
            for line in out.text.lines().filter(|l| is_kubeadm_warning(l)) {
                // klog's prefix (time, pid, file) differs per line; what it says does not.
                let text = line.split_once("] ").map_or(line, |(_, t)| t).trim();
                if seen.insert(text.to_owned()) {
                    self.cx.warn(&format!("kubeadm: {text}")).await?;
                }
            }
        }
        if script == commands::LEFTOVERS {
            for line in out.text.lines().filter_map(|l| l.strip_prefix("left ")) {
                self.cx.warn(&format!("left on the host: {line}")).await?;
            }
        }
        if !out.success() {
            return Err(Failure::ScriptFailed {
                node: self.params.node.to_string(),
                script: script.name().to_owned(),
                exit: exit_text(out.exit),
            }
            .into());
        }
        Ok(())
    }

    /// Connects once per run, to the pinned key only.
    async fn session(&mut self) -> Result<Arc<Session>, RunError> {
        if let Some(s) = &self.session {
            return Ok(s.clone());
        }
        let session = Arc::new(
            self.cx
                .runs
                .inner()
                .ssh
                .connect_planned(&self.params.endpoint, &self.params.host_key)
                .await?,
        );
        self.session = Some(session.clone());
        Ok(session)
    }

    /// Runs a script, streaming its output into the step every 300 ms.
    async fn remote(&mut self, idx: i64, script: &Script) -> Result<Output, RunError> {
        let session = self.session().await?;
        self.cx.say(idx, &format!("$ {}", script.name())).await?;
        let buffer = Arc::new(Mutex::new(String::new()));
        let sink = buffer.clone();
        let run = session.run(script, move |text| {
            if let Ok(mut b) = sink.lock() {
                b.push_str(text);
            }
        });
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_millis(300));
        let mut cancel = self.cx.cancel.clone();
        let result = loop {
            tokio::select! {
                out = &mut run => break out,
                _ = tick.tick() => self.flush(idx, &buffer, false).await?,
                changed = cancel.changed() => {
                    if changed.is_ok() && *cancel.borrow() {
                        // A remote command is not interrupted half-way: it finishes, then the
                        // run stops before the next step.
                        self.cx.say(idx, "cancel requested: this command finishes, nothing runs after it").await?;
                    }
                }
            }
        };
        self.flush(idx, &buffer, true).await?;
        Ok(result?)
    }

    async fn flush(&self, idx: i64, buffer: &Mutex<String>, all: bool) -> Result<(), RunError> {
        let text = {
            let Ok(mut b) = buffer.lock() else {
                return Ok(());
            };
            let cut = if all {
                b.len()
            } else {
                b.rfind('\n').map_or(0, |i| i + 1)
            };
            b.drain(..cut).collect::<String>()
        };
        let text = text.trim_end_matches('\n');
        if !text.is_empty() {
            self.cx.say(idx, text).await?;
        }
        Ok(())
    }

    /// Waits until an admin other than the run's actor approves (or the run is cancelled).
    async fn await_approval(&mut self, idx: i64) -> Result<(), RunError> {
        self.cx
            .say(
                idx,
                "waiting for a second admin to approve this run (from its page)",
            )
            .await?;
        // No timeout: the run waits until approved or cancelled. Woken by any run's change
        // (an approval bumps them).
        let wait = Wait::new("an approval", Duration::from_secs(2))
            .woken_by(Some(self.cx.runs.subscribe()));
        let mut waiter = self.cx.waiter(idx, wait);
        loop {
            let approvers = self
                .cx
                .runs
                .inner()
                .store
                .run_approvals(self.cx.run.id)
                .await?;
            if let Some(a) = approvers.iter().find(|a| **a != self.cx.run.actor) {
                return self.cx.say(idx, &format!("approved by {a}")).await;
            }
            if let Next::TimedOut(_) = waiter.not_yet(String::new()).await? {
                return Err(RunError::Corrupt(
                    "the wait for an approval has no end".into(),
                ));
            }
        }
    }
}

impl Executor for ResetContext {
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(self.step(idx, name))
    }
}
