//! The rollback plan of a finished CNI run (what it created is deleted, what it changed or
//! deleted is put back as its snapshot) and its start.

use grappe_views::runs::{Planned, PlannedObjectView};
use grappe_views::vocab::Level;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::model::{ObjectRow, Plan};
use crate::runs::k8s::{self, Resolver};
use crate::runs::{Failure, Launch, RunError, RunId, RunStatus, Runs, Workflow, check, sealed};

/// What a rollback is planned from: the finished run it undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub run: RunId,
}

impl Runs {
    /// Plans the rollback of a finished run: what it created is deleted, what it changed or
    /// deleted is put back as its snapshot.
    ///
    /// # Errors
    /// [`RunError::NotRollbackable`] when the run is not finished or touched nothing.
    pub async fn plan_rollback(&self, target: RunId) -> Result<Plan, RunError> {
        let inner = self.inner();
        let run = inner
            .store
            .run(target)
            .await?
            .ok_or(RunError::UnknownRun(target))?;
        if matches!(run.status, RunStatus::Running | RunStatus::Interrupted) {
            return Err(RunError::NotRollbackable(
                target,
                format!("it is {}", run.status.as_str()),
            ));
        }
        let touched = self.touched(target).await?;
        if touched.is_empty() {
            return Err(RunError::NotRollbackable(
                target,
                "it changed nothing".into(),
            ));
        }
        let client = self.client_of(&run.cluster).await?;
        let mut resolver = Resolver::new(client);
        let mut planned = Vec::new();
        let mut refs = Vec::new();
        for o in &touched {
            let r = row_ref(o);
            let api = resolver.api(&r).await?;
            let current = k8s::get(&api, &r).await?;
            let before: Option<Value> = o
                .before
                .as_deref()
                .map(|text| {
                    serde_json::from_str(text)
                        .map_err(|e| RunError::from(Failure::snapshot(r.key(), text, &e)))
                })
                .transpose()?;
            let (action, changes, total) = match (&before, &current) {
                (None, None) => (Planned::Absent, Vec::new(), 0),
                (None, Some(_)) => (Planned::Delete, Vec::new(), 0),
                (Some(_), None) => (Planned::Restore, Vec::new(), 0),
                (Some(b), Some(c)) => {
                    let (changes, total) = k8s::diff(c, b);
                    (
                        if total == 0 {
                            Planned::Unchanged
                        } else {
                            Planned::Restore
                        },
                        changes,
                        total,
                    )
                }
            };
            planned.push(PlannedObjectView {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                action,
                changes,
                changes_total: total,
            });
            refs.push(r);
        }
        let mut checks = vec![check("api", Level::Pass, "API server reachable")];
        checks.push(
            self.permissions(&mut resolver, &refs, &["get", "update", "create", "delete"])
                .await?,
        );
        let request = RollbackRequest { run: target };
        let title = format!("rollback of run {} ({})", target.0, run.title);
        Ok(sealed(Plan {
            manifest_sha256: run.manifest_sha256.clone(),
            options: vec![("run".into(), target.0.to_string())],
            objects: planned,
            checks,
            ..Plan::new(
                &run.cluster,
                Workflow::CniRollback,
                title,
                to_value(&request)?,
            )
        }))
    }

    /// The rollback a confirmed request starts (on the cluster of the run it undoes).
    pub(super) async fn prepare_rollback(
        &self,
        cluster: &ClusterName,
        request: RollbackRequest,
    ) -> Result<Launch, RunError> {
        let plan = self.plan_rollback(request.run).await?;
        if plan.cluster != *cluster {
            return Err(RunError::Invalid(format!(
                "run {} is not of cluster {cluster}",
                request.run
            )));
        }
        let target = self
            .inner()
            .store
            .run(request.run)
            .await?
            .ok_or(RunError::UnknownRun(request.run))?;
        let steps = if target.workflow == Workflow::CniMigrate {
            super::migrate::MIGRATION_ROLLBACK_STEPS
                .map(str::to_owned)
                .to_vec()
        } else {
            ROLLBACK_STEPS.map(str::to_owned).to_vec()
        };
        let params = to_value(&request)?;
        Ok(Launch {
            links: vec![("rollback_of", request.run)],
            ..Launch::new(plan, params, steps)
        })
    }

    /// The objects run `target` changed, each with its snapshot from before: what its
    /// rollback puts back.
    async fn touched(&self, target: RunId) -> Result<Vec<ObjectRow>, RunError> {
        Ok(self
            .inner()
            .store
            .run_objects(target)
            .await?
            .into_iter()
            .filter(|o| o.done.is_some() && o.snapshot_taken)
            .collect())
    }

    /// The rollback of finished run `target` as it can be planned while the API server does
    /// not answer (a recovery offers it): from the stored snapshots alone, each object it
    /// created is to be deleted and each it changed restored. Whether one is already so is
    /// seen when the steps run (`absent`, `unchanged`). Empty when the run changed nothing.
    pub(crate) async fn rollback_from_snapshots(
        &self,
        target: RunId,
    ) -> Result<Vec<PlannedObjectView>, RunError> {
        Ok(self
            .touched(target)
            .await?
            .into_iter()
            .map(|o| PlannedObjectView {
                action: if o.before.is_some() {
                    Planned::Restore
                } else {
                    Planned::Delete
                },
                api_version: o.api_version,
                kind: o.kind,
                namespace: o.namespace,
                name: o.name,
                changes: Vec::new(),
                changes_total: 0,
            })
            .collect())
    }
}

/// The steps of a rollback, in order (a recovery that rolls back an install runs them too).
pub(crate) const ROLLBACK_STEPS: [&str; 5] = ["snapshot", "restore", "delete", "rollout", "verify"];
