//! Calico's catalog manifests planned, run and rolled back by one admin, as the Calico lab
//! tests drive them (the manifest path and the Tigera operator, each on a lab of its own).

use std::sync::Arc;

use grappe_engine::Engine;
use grappe_engine::manifests::Source;
use grappe_engine::manifests::operator::OperatorOptions;
use grappe_engine::model::Plan;
use grappe_engine::runs::cni::InstallParams;
use grappe_engine::runs::{Actor, RunId};
use grappe_engine::state::ClusterState;
use grappe_views::runs::RunView;

use super::Lab;

/// A lab of its own on `port_base` with Calico's manifests served as the catalog's mirror, an
/// engine on it (its database in the returned directory, kept as long as it is) and the lab's
/// state once synced.
pub async fn start(port_base: &str) -> (Lab, tempfile::TempDir, Engine, Arc<ClusterState>) {
    let lab = Lab::up(port_base, &[]);
    let mirror = super::serve_dir(super::manifests()).await;
    let db = tempfile::tempdir().expect("tempdir");
    let engine = lab.engine(db.path(), Some(mirror)).await;
    let state = super::synced_state(&engine).await;
    (lab, db, engine, state)
}

/// The level of a plan's check (`pass`, `warn`, `fail`), if the plan has it.
pub fn level<'a>(plan: &'a Plan, id: &str) -> Option<&'a str> {
    plan.checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.level.as_str())
}

/// The message of a plan's check, empty if the plan has none.
pub fn message<'a>(plan: &'a Plan, id: &str) -> &'a str {
    plan.checks
        .iter()
        .find(|c| c.id == id)
        .map_or("", |c| c.message.as_str())
}

/// Runs of one admin on the lab's cluster.
pub struct CalicoRuns<'a> {
    pub engine: &'a Engine,
    pub actor: Actor,
}

impl CalicoRuns<'_> {
    /// The install (or upgrade) plan of a verified catalog manifest.
    pub async fn plan(&self, id: &str, operator: Option<OperatorOptions>) -> Plan {
        let manifest = self
            .engine
            .runs
            .manifest(&self.actor.caller, Source::Catalog(id))
            .await
            .unwrap_or_else(|e| panic!("catalog manifest {id}: {e}"));
        assert!(manifest.verified(), "{id}");
        let params = InstallParams {
            manifest_sha256: manifest.sha256.clone(),
            operator,
            ..InstallParams::default()
        };
        self.engine
            .runs
            .plan_install(&super::lab_name(), &manifest, &params)
            .await
            .unwrap_or_else(|e| panic!("plan {id}: {e}"))
    }

    /// Runs a plan to its end; it must succeed.
    pub async fn run(&self, plan: &Plan) -> (RunId, RunView) {
        super::run(self.engine, &self.actor, plan).await
    }

    /// Plans and runs the rollback of a run; it must succeed.
    pub async fn roll_back(&self, target: RunId) -> RunView {
        let plan = self
            .engine
            .runs
            .plan_rollback(target)
            .await
            .expect("plan rollback");
        self.run(&plan).await.1
    }
}
