//! The manifest -> Tigera operator migration, upstream's path: the operator's CRDs and the
//! operator are applied, then an `Installation` with an empty spec. The operator reads the
//! manifest install's settings (its `migration/convert`), pins kube-system's calico-node to
//! nodes labelled `projectcalico.org/operator-node-migration=pre-operator`, relabels the nodes
//! `migrated` one at a time (calico-system's calico-node starts there, kube-system's stops),
//! then deletes kube-system's calico-node, calico-kube-controllers and calico-typha and removes
//! the labels. Grappe plans it (what moves, what the operator rewrites, what stays), follows it
//! node by node from the live state, and rolls it back to the manifest install from the
//! snapshots: the operator and what it made deleted first, then kube-system put back.

use std::time::Duration;

use grappe_views::runs::{CheckView, Planned, PlannedObjectView, ProgressUnit, StepProgress};
use grappe_views::vocab::Level;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::*;
use crate::manifests::Packaging;
use crate::runs::k8s::{self, KubeError, ObjectRef, Resolver};
use crate::runs::step::Next;
use crate::runs::{Failure, RunError, Runs, check};

/// How often a migration that takes its time says where it stands.
const REPORT_EVERY: Duration = Duration::from_secs(15);

/// The label the operator moves nodes with.
pub(crate) const MIGRATION_LABEL: &str = "projectcalico.org/operator-node-migration";

/// The steps of a migration's rollback: the operator's objects go first (the operator still
/// running, so that its finalizers let calico-system go), so that nothing re-runs the
/// migration when kube-system's calico-node is back.
pub(crate) const MIGRATION_ROLLBACK_STEPS: [&str; 6] = [
    "snapshot",
    "delete",
    "restore",
    "unlabel nodes",
    "rollout",
    "verify",
];

/// What the operator deletes in kube-system once its own copy runs in calico-system
/// (`pkg/controller/migration`): `apps/v1` workloads and the services endpoint ConfigMap.
const MOVED: [(&str, &str, &str); 4] = [
    ("apps/v1", "DaemonSet", "calico-node"),
    ("apps/v1", "Deployment", "calico-kube-controllers"),
    ("apps/v1", "Deployment", "calico-typha"),
    ("v1", "ConfigMap", "kubernetes-services-endpoint"),
];

/// Cluster-wide objects of the manifest install that the operator rewrites under the same name
/// (and owns afterwards: deleting its Installation deletes them).
const REWRITTEN: [&str; 4] = [
    "calico-node",
    "calico-kube-controllers",
    "calico-cni-plugin",
    "calico-typha",
];

/// kube-system objects of the manifest install that the operator leaves in place.
const LEFT: [(&str, &str, &str); 6] = [
    ("v1", "ConfigMap", "calico-config"),
    ("v1", "ServiceAccount", "calico-node"),
    ("v1", "ServiceAccount", "calico-kube-controllers"),
    ("v1", "ServiceAccount", "calico-cni-plugin"),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "calico-kube-controllers",
    ),
    ("policy/v1", "PodDisruptionBudget", "calico-typha"),
];

fn reference(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(str::to_owned),
        name: name.into(),
    }
}

fn row(r: ObjectRef, action: Planned) -> PlannedObjectView {
    PlannedObjectView {
        api_version: r.api_version,
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        action,
        changes: Vec::new(),
        changes_total: 0,
    }
}

/// A migration's target: the operator entry with `crd.projectcalico.org/v1` resources (what a
/// manifest install has), and no option (the operator reads the install's).
pub(super) fn check_target(manifest: &Manifest, params: &InstallParams) -> Result<(), RunError> {
    match manifest.catalog.map(|e| e.packaging) {
        Some(Packaging::Operator { native_v3: false }) => {}
        Some(Packaging::Operator { native_v3: true }) => {
            return Err(RunError::Invalid(
                "a manifest install keeps its resources in crd.projectcalico.org/v1; migrate to the operator entry without native v3 resources".into(),
            ));
        }
        _ => {
            return Err(RunError::Invalid(
                "a migration's target is a catalog entry of the Tigera operator".into(),
            ));
        }
    }
    let options = params.ipv4pool_cidr.is_some()
        || params.ip_autodetection_method.is_some()
        || params.operator.is_some();
    if options {
        return Err(RunError::Invalid(
            "a migration takes no option: the operator reads the pool, encapsulation, MTU and autodetection of the manifest install".into(),
        ));
    }
    Ok(())
}

impl Runs {
    /// The rows of a migration beside the operator's own objects: what the operator moves out
    /// of kube-system and what it rewrites, each to be snapshotted before the run. Objects
    /// absent now are left out, but for Felix's and BGP's `default` configurations (the
    /// operator creates them if need be: a rollback deletes what it created).
    pub(super) async fn handover_rows(
        &self,
        resolver: &mut Resolver,
    ) -> Result<Vec<PlannedObjectView>, RunError> {
        let mut rows = Vec::new();
        let moved = MOVED
            .iter()
            .map(|(v, k, n)| (reference(v, k, Some("kube-system"), n), Planned::Move));
        let rewritten = REWRITTEN.iter().flat_map(|n| {
            ["ClusterRole", "ClusterRoleBinding"].map(|k| {
                (
                    reference("rbac.authorization.k8s.io/v1", k, None, n),
                    Planned::Handover,
                )
            })
        });
        for (r, action) in moved.chain(rewritten) {
            let api = resolver.api(&r).await?;
            if k8s::get(&api, &r).await?.is_some() {
                rows.push(row(r, action));
            }
        }
        let calico = "crd.projectcalico.org/v1";
        for kind in ["FelixConfiguration", "BGPConfiguration"] {
            rows.push(row(
                reference(calico, kind, None, "default"),
                Planned::Handover,
            ));
        }
        // From the API, not the live state: right after an install its pool may not have
        // reached the watches yet.
        let pool_kind = reference(calico, "IPPool", None, "");
        let pools: Vec<String> = match resolver.api(&pool_kind).await {
            Ok(api) => api
                .list_metadata(&ListParams::default())
                .await
                .map_err(|source| KubeError::Call {
                    verb: "list",
                    object: "IPPool".into(),
                    source,
                })?
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect(),
            Err(KubeError::UnknownKind { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        rows.extend(
            pools
                .iter()
                .map(|p| row(reference(calico, "IPPool", None, p), Planned::Handover)),
        );
        Ok(rows)
    }

    /// What the migration leaves in kube-system (the operator does not delete it): to remove
    /// by hand once the cluster runs well on the operator.
    pub(super) async fn migration_leftovers(
        &self,
        resolver: &mut Resolver,
    ) -> Result<CheckView, RunError> {
        let mut left = Vec::new();
        for (v, k, n) in LEFT {
            let r = reference(v, k, Some("kube-system"), n);
            let api = resolver.api(&r).await?;
            if k8s::get(&api, &r).await?.is_some() {
                left.push(r.key());
            }
        }
        Ok(if left.is_empty() {
            check(
                "migrate-leftovers",
                Level::Pass,
                "the manifest install leaves nothing behind in kube-system",
            )
        } else {
            check(
                "migrate-leftovers",
                Level::Warn,
                format!(
                    "the operator leaves {} object(s) of the manifest install in kube-system: {}; a rollback needs them, remove them once the cluster runs well on the operator",
                    left.len(),
                    left.join(", ")
                ),
            )
        })
    }
}

/// Where each node stands in a migration, from the live state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Moves {
    /// Nodes with a Ready calico-system calico-node and no kube-system one.
    pub moved: Vec<String>,
    /// Nodes still on kube-system's calico-node (or on none).
    pub waiting: Vec<String>,
}

impl Moves {
    fn line(&self) -> String {
        let total = self.moved.len() + self.waiting.len();
        let mut line = format!("nodes on calico-system: {}/{total}", self.moved.len());
        if !self.waiting.is_empty() {
            let shown: Vec<&str> = self.waiting.iter().take(8).map(String::as_str).collect();
            line.push_str(&format!(
                " (still on kube-system: {}{})",
                shown.join(", "),
                if self.waiting.len() > 8 {
                    format!(" and {} more", self.waiting.len() - 8)
                } else {
                    String::new()
                }
            ));
        }
        line
    }
}

impl StepContext {
    /// Where each node stands: which calico-node serves it.
    fn moves(&self) -> Moves {
        let mut moves = Moves::default();
        let Some(state) = self.live() else {
            return moves;
        };
        let stores = state.read();
        for node in stores.nodes.keys() {
            let of = |ns: &str| {
                stores
                    .pods_on(node)
                    .filter(|p| p.namespace == ns && !p.deleting)
                    .filter(|p| {
                        p.owner
                            .as_ref()
                            .is_some_and(|o| o.kind == "DaemonSet" && o.name == "calico-node")
                    })
                    .map(|p| p.ready)
                    .collect::<Vec<bool>>()
            };
            let moved = of("calico-system").contains(&true) && of("kube-system").is_empty();
            if moved {
                moves.moved.push(node.clone());
            } else {
                moves.waiting.push(node.clone());
            }
        }
        moves
    }

    /// Follows the operator's migration until every node runs calico-system's calico-node,
    /// kube-system's is gone and no node keeps the migration label; says each node as it
    /// moves. Fails at once when the operator reports that it cannot convert the install.
    pub(super) async fn migrate_nodes(&mut self, idx: i64) -> Result<(), RunError> {
        let wait = self.live_wait("the migration").report_every(REPORT_EVERY);
        let mut waiter = self.cx.waiter(idx, wait);
        let kube_system = reference("apps/v1", "DaemonSet", Some("kube-system"), "calico-node");
        let daemonsets = self.resolver.api(&kube_system).await?;
        let nodes: Api<Node> = Api::all(self.resolver.client().clone());
        let mut said: Vec<String> = Vec::new();
        loop {
            let moves = self.moves();
            let total = moves.moved.len() + moves.waiting.len();
            let new: Vec<&String> = moves.moved.iter().filter(|n| !said.contains(n)).collect();
            for node in new {
                said.push(node.clone());
                let line = format!(
                    "[{:>4} s] {node} moved to calico-system ({}/{total})",
                    waiter.elapsed().as_secs(),
                    said.len()
                );
                self.cx.say(idx, &line).await?;
            }
            let old = k8s::get(&daemonsets, &kube_system).await?.is_some();
            let labelled = nodes
                .list_metadata(&ListParams::default().labels(MIGRATION_LABEL).limit(1))
                .await
                .map_err(|source| KubeError::Call {
                    verb: "list",
                    object: format!("Node (label {MIGRATION_LABEL})"),
                    source,
                })?
                .items
                .len();
            let degraded = self.migration_error();
            if let Some(message) = degraded {
                return Err(Failure::MigrationRefused { message }.into());
            }
            waiter
                .count(StepProgress {
                    done: moves.moved.len() as u64,
                    total: total as u64,
                    unit: ProgressUnit::NodesMoved,
                    note: None,
                    updated: None,
                })
                .await?;
            let mut line = moves.line();
            if old {
                line.push_str("; kube-system/calico-node still there");
            }
            if labelled > 0 {
                line.push_str(&format!("; nodes still labelled {MIGRATION_LABEL}"));
            }
            if moves.waiting.is_empty() && !old && labelled == 0 && total > 0 {
                return self
                    .cx
                    .say(
                        idx,
                        &format!("{line}; kube-system/calico-node deleted by the operator"),
                    )
                    .await;
            }
            if let Next::TimedOut(line) = waiter.not_yet(line).await? {
                return Err(Failure::RolloutTimeout {
                    seconds: self.rollout_timeout.as_secs(),
                    missing: line,
                }
                .into());
            }
        }
    }

    /// The operator's refusal to convert the install (TigeraStatus `calico` Degraded with
    /// reason `MigrationError`), from the live state.
    fn migration_error(&self) -> Option<String> {
        let state = self.live()?;
        let stores = state.read();
        let calico = stores.tigera_status.get("calico")?;
        (calico.degraded && calico.reason == "MigrationError").then(|| calico.message.clone())
    }

    /// Removes the operator's migration label from every node that has it (a rollback of a
    /// migration that stopped half-way leaves some).
    pub(super) async fn unlabel_nodes(&mut self, idx: i64) -> Result<(), RunError> {
        let nodes: Api<Node> = Api::all(self.resolver.client().clone());
        let labelled = nodes
            .list_metadata(&ListParams::default().labels(MIGRATION_LABEL))
            .await
            .map_err(|source| KubeError::Call {
                verb: "list",
                object: format!("Node (label {MIGRATION_LABEL})"),
                source,
            })?;
        let patch = serde_json::json!({ "metadata": { "labels": { MIGRATION_LABEL: null } } });
        let mut count = 0;
        for node in labelled.items {
            let Some(name) = node.metadata.name else {
                continue;
            };
            nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| KubeError::Call {
                    verb: "patch",
                    object: format!("Node/{name}"),
                    source,
                })?;
            count += 1;
            self.cx
                .say(idx, &format!("removed {MIGRATION_LABEL} from {name}"))
                .await?;
        }
        if count == 0 {
            self.cx
                .say(idx, &format!("no node carries {MIGRATION_LABEL}"))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_counts_nodes_and_names_the_first_waiting() {
        let moves = Moves {
            moved: vec!["a".into()],
            waiting: (0..10).map(|i| format!("n{i}")).collect(),
        };
        assert_eq!(
            moves.line(),
            "nodes on calico-system: 1/11 (still on kube-system: n0, n1, n2, n3, n4, n5, n6, n7 and 2 more)"
        );
        assert_eq!(
            Moves {
                moved: vec!["a".into()],
                waiting: vec![],
            }
            .line(),
            "nodes on calico-system: 1/1"
        );
    }
}
