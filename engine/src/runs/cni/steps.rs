//! The steps of the CNI workflows: snapshot, apply per phase, CRDs established, rollout,
//! restore, delete, verify. Each looks at the cluster first, so a resumed run repeats it safely.

use std::time::Duration;

use futures::StreamExt;
use grappe_views::runs::Planned;
use serde_json::Value;
use tokio::sync::watch;

use super::*;
use crate::manifests::parse::Phase;
use crate::manifests::{self};
use crate::model::{ObjectRow, RunRow};
use crate::runs::k8s::{self, KubeError, ObjectRef, Resolver};
use crate::runs::registry::Executor;
use crate::runs::{RunError, RunId, Runs, Workflow, cluster_name};
use futures::future::BoxFuture;

/// What a step needs: the run, its objects, the cluster.
pub(crate) struct StepContext {
    runs: Runs,
    run: RunRow,
    resolver: Resolver,
    cancel: watch::Receiver<bool>,
    /// This run's object rows (seq order).
    rows: Vec<ObjectRow>,
    /// For installs: the manifest objects by row (same order as the plan).
    desired: Vec<Option<Value>>,
    /// For rollbacks: the target run's snapshots by row (`None`: it did not exist).
    target_before: Vec<Option<Value>>,
    rollout_timeout: Duration,
}

impl StepContext {
    pub(crate) async fn load(
        runs: &Runs,
        run: &RunRow,
        cancel: watch::Receiver<bool>,
    ) -> Result<Self, RunError> {
        let inner = runs.inner();
        let client = runs.client_of(&run.cluster).await?;
        let rows = inner.store.run_objects(run.id).await?;
        let params: Value = serde_json::from_str(&run.params)
            .map_err(|e| RunError::Step(format!("parameters: {e}")))?;
        let mut desired = vec![None; rows.len()];
        let mut target_before = vec![None; rows.len()];
        match Workflow::parse(&run.workflow) {
            Some(Workflow::CniInstall) => {
                let p: InstallParams = serde_json::from_value(params.clone())
                    .map_err(|e| RunError::Step(format!("parameters: {e}")))?;
                let manifest = manifests::load(&inner.store, &p.manifest_sha256).await?;
                let objects = install_objects(&manifest, &p)?;
                for (i, row) in rows.iter().enumerate() {
                    desired[i] = objects
                        .iter()
                        .find(|o| object_ref(o) == row_ref(row))
                        .map(|o| o.value.clone());
                }
            }
            Some(Workflow::CniRollback) => {
                let target = RunId(
                    params
                        .get("run")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| RunError::Step("parameters: no run".into()))?,
                );
                let theirs = inner.store.run_objects(target).await?;
                for (i, row) in rows.iter().enumerate() {
                    target_before[i] = theirs
                        .iter()
                        .find(|o| row_ref(o) == row_ref(row))
                        .and_then(|o| o.before.as_deref())
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| RunError::Step(format!("snapshot: {e}")))?;
                }
            }
            _ => {}
        }
        let timeout = params
            .get("timeout_seconds")
            .and_then(Value::as_u64)
            .map_or(super::ROLLOUT_TIMEOUT, Duration::from_secs);
        Ok(Self {
            runs: runs.clone(),
            run: run.clone(),
            resolver: Resolver::new(client),
            cancel,
            rows,
            desired,
            target_before,
            rollout_timeout: timeout,
        })
    }

    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    async fn say(&self, idx: i64, line: &str) -> Result<(), RunError> {
        self.runs.say(self.run.id, idx, line).await
    }

    async fn done(&self, seq: i64, what: &str) -> Result<(), RunError> {
        self.runs
            .inner()
            .store
            .set_object_done(self.run.id, seq, what)
            .await?;
        Ok(())
    }

    async fn step(&mut self, idx: i64, name: &str) -> Result<(), RunError> {
        let workflow = Workflow::parse(&self.run.workflow)
            .ok_or_else(|| RunError::Step(format!("unknown workflow {}", self.run.workflow)))?;
        // Rows are reloaded: a resumed step sees what the previous attempt recorded.
        self.rows = self.runs.inner().store.run_objects(self.run.id).await?;
        match (workflow, name) {
            (_, "snapshot") => self.snapshot(idx).await,
            (Workflow::CniInstall, "wait crds established") => self.wait_crds(idx).await,
            (Workflow::CniInstall, "rollout") => self.rollout(idx).await,
            (Workflow::CniInstall, step) if step.starts_with("apply ") => {
                let phase = Phase::ALL
                    .into_iter()
                    .find(|p| step == format!("apply {}", p.as_str()));
                match phase {
                    Some(p) => self.apply_phase(idx, p).await,
                    None => Err(RunError::Step(format!("unknown step {step}"))),
                }
            }
            (Workflow::CniRollback, "restore") => self.restore(idx).await,
            (_, "delete") => self.delete(idx).await,
            (Workflow::CniRollback, "rollout") => self.rollout(idx).await,
            (Workflow::CniRollback, "verify") => self.verify(idx).await,
            (_, step) => Err(RunError::Step(format!("unknown step {step}"))),
        }
    }

    /// Records each object as it is before the run touches it (once: a resumed run keeps the
    /// first snapshot).
    async fn snapshot(&mut self, idx: i64) -> Result<(), RunError> {
        let mut existing = 0;
        let mut todo = Vec::new();
        for row in self.rows.clone() {
            if row.snapshot_taken {
                existing += usize::from(row.before.is_some());
                continue;
            }
            let r = row_ref(&row);
            let api = match self.resolver.api(&r).await {
                Ok(api) => Some(api),
                Err(KubeError::UnknownKind { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            todo.push((row.seq, r, api));
        }
        // A few GETs at a time; each result recorded in the manifest's order.
        let mut gets = futures::stream::iter(todo)
            .map(|(seq, r, api)| async move {
                let current = match api {
                    Some(api) => k8s::get(&api, &r).await,
                    None => Ok(None),
                };
                (seq, current)
            })
            .buffered(CONCURRENCY);
        while let Some((seq, current)) = gets.next().await {
            let text = current?.as_ref().map(Value::to_string);
            existing += usize::from(text.is_some());
            self.runs
                .inner()
                .store
                .set_object_snapshot(self.run.id, seq, text.as_deref())
                .await?;
        }
        self.say(
            idx,
            &format!(
                "{} objects recorded, {existing} existed before the run",
                self.rows.len()
            ),
        )
        .await
    }

    /// Applies the phase's objects, a few at a time (objects of one phase do not depend on
    /// each other; phases go in order). Every applied object is recorded, even when another
    /// of its batch failed; then the first failure ends the step.
    async fn apply_phase(&mut self, idx: i64, phase: Phase) -> Result<(), RunError> {
        let mut todo = Vec::new();
        for (i, row) in self.rows.clone().iter().enumerate() {
            if Phase::of(&row.kind) != phase {
                continue;
            }
            let Some(value) = self.desired[i].clone() else {
                return Err(RunError::Step(format!(
                    "{} is not in the manifest",
                    row_ref(row).key()
                )));
            };
            let r = row_ref(row);
            let api = self.resolver.api(&r).await?;
            todo.push((row.seq, r, api, value));
        }
        for batch in todo.chunks(CONCURRENCY) {
            if self.cancelled() {
                return Err(KubeError::Cancelled.into());
            }
            let applies = batch
                .iter()
                .map(|(_, r, api, value)| k8s::apply(api, r, value, false));
            let results = futures::future::join_all(applies).await;
            let mut failure = None;
            for ((seq, r, _, _), result) in batch.iter().zip(results) {
                match result {
                    Ok(_) => {
                        self.done(*seq, "applied").await?;
                        self.say(idx, &format!("applied {}", r.key())).await?;
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        Ok(())
    }

    async fn wait_crds(&mut self, idx: i64) -> Result<(), RunError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        for row in self.rows.clone() {
            if row.kind != "CustomResourceDefinition" {
                continue;
            }
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            loop {
                let established = k8s::get(&api, &r).await?.is_some_and(|crd| {
                    crd.pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|c| {
                            c.iter()
                                .any(|c| c["type"] == "Established" && c["status"] == "True")
                        })
                });
                if established {
                    break;
                }
                if self.cancelled() {
                    return Err(KubeError::Cancelled.into());
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(RunError::Step(format!(
                        "{} not Established after 120 s",
                        r.name
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        self.resolver.forget();
        self.say(idx, "every CRD is Established").await
    }

    /// Waits until every DaemonSet and Deployment of the run is rolled out and every node is
    /// Ready, reporting progress; fails after the timeout saying what is missing.
    async fn rollout(&mut self, idx: i64) -> Result<(), RunError> {
        let workloads: Vec<ObjectRef> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(i, row)| {
                matches!(row.kind.as_str(), "DaemonSet" | "Deployment")
                    && match Workflow::parse(&self.run.workflow) {
                        // A rollback waits for what it restored, not for what it deleted.
                        Some(Workflow::CniRollback) => self.target_before[*i].is_some(),
                        _ => true,
                    }
            })
            .map(|(_, row)| row_ref(row))
            .collect();
        if workloads.is_empty() {
            return self.say(idx, "no workload to wait for").await;
        }
        let started = tokio::time::Instant::now();
        let mut last = String::new();
        let mut changes = cluster_name(&self.run.cluster)
            .ok()
            .and_then(|c| self.runs.inner().states.get(&c))
            .map(|s| s.changes());
        loop {
            let mut missing = Vec::new();
            let mut lines = Vec::new();
            for w in &workloads {
                let api = self.resolver.api(w).await?;
                let Some(obj) = k8s::get(&api, w).await? else {
                    missing.push(format!("{} is missing", w.key()));
                    continue;
                };
                let (line, ready) = if w.kind == "DaemonSet" {
                    self.daemonset_progress(&obj)
                } else {
                    deployment_progress(&obj)
                };
                if !ready {
                    missing.push(line.clone());
                }
                lines.push(line);
            }
            let (nodes_line, nodes_ready) = self.nodes_progress().await?;
            if !nodes_ready {
                missing.push(nodes_line.clone());
            }
            lines.push(nodes_line);
            let text = lines.join("; ");
            if text != last {
                self.say(
                    idx,
                    &format!("[{:>4} s] {text}", started.elapsed().as_secs()),
                )
                .await?;
                last = text;
            }
            if missing.is_empty() {
                return Ok(());
            }
            if self.cancelled() {
                return Err(KubeError::Cancelled.into());
            }
            if started.elapsed() > self.rollout_timeout {
                return Err(RunError::Step(format!(
                    "rollout not finished after {} s: {}",
                    self.rollout_timeout.as_secs(),
                    missing.join("; ")
                )));
            }
            // Look again when the cluster's live state changes (pods turning Ready, the
            // DaemonSet's status), a short moment later so that a burst makes one look; at the
            // latest after a second.
            let mut cancel = self.cancel.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = changed(changes.as_mut()) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ = cancel.changed() => {}
            }
        }
    }

    /// A DaemonSet's rollout line, and whether it is done. The nodes still waiting (no Ready
    /// pod of the DaemonSet) come from the live state: no LIST per poll.
    fn daemonset_progress(&self, ds: &Value) -> (String, bool) {
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
        (line, done)
    }

    /// The nodes with no Ready pod of DaemonSet `namespace/name`, from the live state.
    fn nodes_without_ready_pod(&self, namespace: &str, name: &str) -> Vec<String> {
        let Ok(cluster) = cluster_name(&self.run.cluster) else {
            return Vec::new();
        };
        let Some(state) = self.runs.inner().states.get(&cluster) else {
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

    async fn nodes_progress(&self) -> Result<(String, bool), RunError> {
        let name = cluster_name(&self.run.cluster)?;
        let Some(state) = self.runs.inner().states.get(&name) else {
            return Ok(("nodes: no live state".into(), false));
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
        Ok((line, not_ready.is_empty()))
    }

    /// Puts back, in apply order, what the target run changed or deleted.
    async fn restore(&mut self, idx: i64) -> Result<(), RunError> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by_key(|&i| Phase::of(&self.rows[i].kind));
        for i in order {
            let row = self.rows[i].clone();
            if row.done.is_some() || !matches!(row.planned, Planned::Restore | Planned::Unchanged) {
                continue;
            }
            let Some(before) = self.target_before[i].clone() else {
                continue;
            };
            if self.cancelled() {
                return Err(KubeError::Cancelled.into());
            }
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            let current = k8s::get(&api, &r).await?;
            let what = match current {
                Some(c) if k8s::diff(&c, &before).1 == 0 => "unchanged",
                _ => k8s::restore(&api, &r, &before).await?,
            };
            self.done(row.seq, what).await?;
            self.say(idx, &format!("{what} {}", r.key())).await?;
        }
        Ok(())
    }

    /// Deletes, workloads first and CRDs last, what is planned for deletion, waiting until
    /// each is gone.
    async fn delete(&mut self, idx: i64) -> Result<(), RunError> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(Phase::of(&self.rows[i].kind)));
        for i in order {
            let row = self.rows[i].clone();
            if row.planned != Planned::Delete || row.done.is_some() {
                continue;
            }
            let r = row_ref(&row);
            let api = match self.resolver.api(&r).await {
                Ok(api) => api,
                Err(KubeError::UnknownKind { .. }) => {
                    self.done(row.seq, "absent").await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let gone = match k8s::delete(&api, &r).await? {
                Some(deleting) => {
                    self.wait_gone(idx, &deleting).await?;
                    true
                }
                None => false,
            };
            let what = if gone { "deleted" } else { "absent" };
            self.done(row.seq, what).await?;
            self.say(idx, &format!("{what} {}", r.key())).await?;
        }
        Ok(())
    }

    /// Waits until a deleted object is gone, checking for cancellation every half second and
    /// saying every [`WAITING_REPORT`] what still holds it ([`k8s::holding`]).
    async fn wait_gone(&self, idx: i64, deleting: &k8s::Deleting) -> Result<(), RunError> {
        let key = deleting.object().key();
        let started = tokio::time::Instant::now();
        let mut next_report = started + WAITING_REPORT;
        while let Some(current) = deleting.remaining().await? {
            if self.cancelled() {
                return Err(KubeError::Cancelled.into());
            }
            let now = tokio::time::Instant::now();
            if now >= started + DELETE_TIMEOUT {
                return Err(KubeError::NotGone {
                    object: key,
                    seconds: DELETE_TIMEOUT.as_secs(),
                    holding: k8s::holding(&current),
                }
                .into());
            }
            if now >= next_report {
                next_report = now + WAITING_REPORT;
                let waited = now.duration_since(started).as_secs();
                let holding = k8s::holding(&current);
                self.say(idx, &format!("waiting for {key} ({waited} s): {holding}"))
                    .await?;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    /// Compares every object with the target run's snapshot: the same, or absent if it did not
    /// exist.
    async fn verify(&mut self, idx: i64) -> Result<(), RunError> {
        let mut differ = Vec::new();
        for (i, row) in self.rows.clone().iter().enumerate() {
            let r = row_ref(row);
            let current = match self.resolver.api(&r).await {
                Ok(api) => k8s::get(&api, &r).await?,
                Err(KubeError::UnknownKind { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            match (&self.target_before[i], current) {
                (None, None) => {}
                (Some(b), Some(c)) => {
                    let (changes, total) = k8s::diff(b, &c);
                    if total > 0 {
                        differ.push(format!(
                            "{} differs at {}",
                            r.key(),
                            changes
                                .iter()
                                .take(3)
                                .map(|c| c.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                (None, Some(_)) => differ.push(format!("{} still exists", r.key())),
                (Some(_), None) => differ.push(format!("{} is missing", r.key())),
            }
        }
        if differ.is_empty() {
            self.say(
                idx,
                &format!(
                    "all {} objects equal their snapshot from before the run",
                    self.rows.len()
                ),
            )
            .await
        } else {
            Err(RunError::Step(format!(
                "not as before the run: {}",
                differ.join("; ")
            )))
        }
    }
}

/// Resolves when the live state's version changes; never without a live state.
async fn changed(changes: Option<&mut tokio::sync::watch::Receiver<u64>>) {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

fn deployment_progress(d: &Value) -> (String, bool) {
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
    )
}

impl Executor for StepContext {
    fn run_step<'a>(&'a mut self, idx: i64, name: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(self.step(idx, name))
    }
}
