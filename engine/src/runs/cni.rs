//! The CNI workflows on the run engine: install (or upgrade) from a manifest, roll back a
//! finished run, and remove a catalog manifest's objects (a CNI installed outside Grappe). Each
//! has a plan, computed without changing anything, and idempotent steps.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use grappe_views::runs::{CheckView, PlanView, Planned, PlannedObjectView};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::k8s::{self, KubeError, ObjectRef, Resolver};
use super::{
    Confirmation, RunError, RunId, RunStatus, Runs, Workflow, check, cluster_name, sealed,
};
use crate::audit::Caller;
use crate::diagnostics::detect_cnis;
use crate::manifests::parse::{CalicoOptions, ManifestObject, Phase, apply_calico_options, parse};
use crate::manifests::{self, Manifest};
use crate::names::ClusterName;
use crate::net::Cidr;
use crate::store::runs::{ObjectRow, RunRow};

/// Calico's default pool when neither the option nor kubeadm's podSubnet says otherwise.
const CALICO_DEFAULT_POOL: &str = "192.168.0.0/16";
/// How long a deletion may take before the step fails.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a deletion that takes its time says what still holds the object.
const WAITING_REPORT: Duration = Duration::from_secs(15);

/// Requests in flight at once while planning, snapshotting and applying.
const CONCURRENCY: usize = 4;

/// The options of an install, as recorded in the run's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallParams {
    pub manifest_sha256: String,
    pub ipv4pool_cidr: Option<String>,
    pub ip_autodetection_method: Option<String>,
}

impl InstallParams {
    fn calico(&self) -> Result<CalicoOptions, RunError> {
        Ok(CalicoOptions {
            ipv4pool_cidr: self
                .ipv4pool_cidr
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.trim()
                        .parse::<Cidr>()
                        .map_err(|e| RunError::Step(format!("CALICO_IPV4POOL_CIDR {s:?}: {e}")))
                })
                .transpose()?,
            ip_autodetection_method: self
                .ip_autodetection_method
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        })
    }
}

fn object_ref(o: &ManifestObject) -> ObjectRef {
    ObjectRef {
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
    }
}

fn row_ref(o: &ObjectRow) -> ObjectRef {
    ObjectRef {
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
    }
}

/// The manifest's objects with the install options applied, in apply order.
fn install_objects(
    manifest: &Manifest,
    params: &InstallParams,
) -> Result<Vec<ManifestObject>, RunError> {
    let mut objects = parse(&manifest.text)?;
    let options = params.calico()?;
    if options != CalicoOptions::default() {
        apply_calico_options(&mut objects, &options)?;
    }
    objects.sort_by_key(ManifestObject::phase);
    Ok(objects)
}

/// The CNI a manifest installs (`Calico`, `Flannel`), from its catalog entry or its images.
fn manifest_cni(manifest: &Manifest, objects: &[ManifestObject]) -> Option<String> {
    if let Some(entry) = manifest.catalog {
        return Some(entry.cni.to_owned());
    }
    let text = objects
        .iter()
        .filter(|o| o.kind == "DaemonSet")
        .map(|o| o.value.to_string())
        .collect::<String>();
    if text.contains("calico/node") {
        Some("Calico".into())
    } else if text.contains("flannel") {
        Some("Flannel".into())
    } else {
        None
    }
}

impl Runs {
    /// Plans an install (or upgrade) of `manifest` on `cluster`: each object's action from a
    /// server-side dry-run apply, and the preflight checks. Changes nothing in the cluster; the
    /// manifest is stored (content-addressed) so that the run can use exactly it.
    ///
    /// # Errors
    /// [`RunError`]: an unknown cluster, an unparsable manifest (with document and line), an
    /// invalid option, an unreachable API server.
    pub async fn plan_install(
        &self,
        cluster: &str,
        manifest: &Manifest,
        params: &InstallParams,
    ) -> Result<PlanView, RunError> {
        let inner = self.inner();
        let name = cluster_name(cluster)?;
        let objects = install_objects(manifest, params)?;
        let cni = manifest_cni(manifest, &objects);
        manifests::store(&inner.store, manifest).await?;
        let client = self.client_of(cluster).await?;
        client
            .apiserver_version()
            .await
            .map_err(|source| KubeError::Call {
                verb: "get",
                object: "/version".into(),
                source,
            })?;
        // Check messages are part of the plan's hash: nothing that varies by itself (timings).
        let mut checks = vec![check("api", "pass", "API server reachable")];
        let mut resolver = Resolver::new(client.clone());
        let created_namespaces: BTreeSet<String> = objects
            .iter()
            .filter(|o| o.kind == "Namespace")
            .map(|o| o.name.clone())
            .collect();
        let defines_kinds = objects.iter().any(|o| o.kind == "CustomResourceDefinition");
        // Resolve every kind first (cached), then GET and dry-run a few objects at a time.
        let mut todo = Vec::new();
        for o in &objects {
            let r = object_ref(o);
            let api = match resolver.api(&r).await {
                Ok(api) => Some(api),
                // A kind this manifest's own CRDs define: it cannot be dry-run before them.
                Err(KubeError::UnknownKind { .. }) if defines_kinds => None,
                Err(e) => return Err(e.into()),
            };
            let in_new_ns = r
                .namespace
                .as_ref()
                .is_some_and(|ns| created_namespaces.contains(ns));
            todo.push((r, api, o.value.clone(), in_new_ns));
        }
        // Owned items: futures borrowing from the list would not be Send for the run's task.
        let planned: Vec<PlannedObjectView> = futures::stream::iter(todo)
            .map(|(r, api, value, in_new_ns)| async move {
                plan_object(&r, api.as_ref(), &value, in_new_ns).await
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut options = Vec::new();
        if let Some(c) = &params.ipv4pool_cidr {
            options.push(("CALICO_IPV4POOL_CIDR".to_owned(), c.clone()));
        }
        if let Some(m) = &params.ip_autodetection_method {
            options.push(("IP_AUTODETECTION_METHOD".to_owned(), m.clone()));
        }
        checks.extend(self.state_checks(&name, cni.as_deref(), manifest, params)?);
        checks.push(
            self.permissions(
                &mut resolver,
                &objects.iter().map(object_ref).collect::<Vec<_>>(),
                &["get", "create", "patch"],
            )
            .await?,
        );
        let title = match manifest.catalog {
            Some(e) => format!("{} {}", e.cni, e.version),
            None => format!("{} (unverified)", manifest.source),
        };
        Ok(sealed(PlanView {
            cluster: cluster.to_owned(),
            workflow: Workflow::CniInstall.as_str().to_owned(),
            title,
            manifest_source: Some(manifest.source.clone()),
            manifest_sha256: Some(manifest.sha256.clone()),
            verified: manifest.verified(),
            options,
            objects: planned,
            checks,
            drain: None,
            reset: None,
            recovery: None,
            hash: String::new(),
        }))
    }

    /// Checks from the live state: other CNIs, the pool against node addresses, kubeadm's
    /// subnets, and the node count.
    fn state_checks(
        &self,
        name: &ClusterName,
        cni: Option<&str>,
        manifest: &Manifest,
        params: &InstallParams,
    ) -> Result<Vec<CheckView>, RunError> {
        let mut checks = Vec::new();
        let Some(state) = self.inner().states.get(name) else {
            return Ok(vec![check(
                "state",
                "fail",
                "no live state for this cluster",
            )]);
        };
        // What the checks read must have arrived: a plan made on half-loaded state would differ
        // from the same plan a second later.
        if !state
            .link()
            .has_listed(&["nodes", "daemonsets", "deployments", "kubeadm-config"])
        {
            checks.push(check(
                "state",
                "fail",
                "the cluster's state has not been read yet: try again in a moment",
            ));
            return Ok(checks);
        }
        let stores = state.read();
        let installed = detect_cnis(&stores);
        let version = manifest.catalog.map(|e| e.version);
        match cni {
            Some(cni) => {
                let others: Vec<String> = installed
                    .iter()
                    .filter(|(kind, _, _)| kind != cni)
                    .map(|(kind, v, ds)| format!("{kind} {} ({ds})", v.as_deref().unwrap_or("?")))
                    .collect();
                if !others.is_empty() {
                    checks.push(check(
                        "cni",
                        "fail",
                        format!(
                            "another CNI is installed: {}; remove it first",
                            others.join(", ")
                        ),
                    ));
                } else if let Some((_, v, ds)) = installed.iter().find(|(kind, _, _)| kind == cni) {
                    let from = v.as_deref().unwrap_or("?");
                    if version.is_some_and(|to| to != from) {
                        checks.push(check(
                            "cni",
                            "warn",
                            format!("upgrade: {cni} {from} ({ds}) to {}", version.unwrap_or("?")),
                        ));
                    } else {
                        checks.push(check("cni", "pass", format!("{cni} {from} is already installed ({ds}): the objects are applied again")));
                    }
                } else {
                    checks.push(check("cni", "pass", "no CNI installed"));
                }
            }
            None => checks.push(check(
                "cni",
                "warn",
                "the manifest's CNI is not recognised: no CNI-specific check",
            )),
        }
        let nodes: Vec<(&str, std::net::IpAddr)> = stores
            .nodes
            .values()
            .filter_map(|n| Some((n.name.as_str(), n.internal_ip()?.parse().ok()?)))
            .collect();
        let kubeadm = stores.kubeadm.clone().unwrap_or_default();
        let service: Option<Cidr> = kubeadm
            .service_subnet
            .as_deref()
            .and_then(|s| s.parse().ok());
        if cni == Some("Calico") {
            let options = params.calico()?;
            let pod_subnet: Option<Cidr> =
                kubeadm.pod_subnet.as_deref().and_then(|s| s.parse().ok());
            let (pool, from) = match (options.ipv4pool_cidr, pod_subnet) {
                (Some(c), _) => (c, "CALICO_IPV4POOL_CIDR"),
                (None, Some(p)) => (p, "kubeadm podSubnet"),
                (None, None) => (
                    CALICO_DEFAULT_POOL
                        .parse()
                        .map_err(|e| RunError::Step(format!("{e}")))?,
                    "Calico's default",
                ),
            };
            let inside: Vec<String> = nodes
                .iter()
                .filter(|(_, ip)| pool.contains(*ip))
                .map(|(n, ip)| format!("{n} ({ip})"))
                .collect();
            if inside.is_empty() {
                checks.push(check(
                    "pool",
                    "pass",
                    format!(
                        "IP pool {pool} ({from}) does not overlap the {} node addresses",
                        nodes.len()
                    ),
                ));
            } else {
                let shown: Vec<&str> = inside.iter().take(5).map(String::as_str).collect();
                checks.push(check("pool", "fail", format!(
                    "IP pool {pool} ({from}) contains {} node address(es): {}{}; choose another CALICO_IPV4POOL_CIDR",
                    inside.len(), shown.join(", "), if inside.len() > 5 { ", …" } else { "" }
                )));
            }
            if let Some(s) = service.filter(|s| s.overlaps(&pool)) {
                checks.push(check(
                    "service-subnet",
                    "fail",
                    format!("IP pool {pool} overlaps the service subnet {s}"),
                ));
            }
            if let Some(p) = pod_subnet.filter(|p| from == "CALICO_IPV4POOL_CIDR" && *p != pool) {
                checks.push(check(
                    "pod-subnet",
                    "warn",
                    format!("IP pool {pool} differs from kubeadm's podSubnet {p}"),
                ));
            }
        }
        let total = stores.nodes.len();
        let not_ready = stores.nodes.values().filter(|n| !n.is_ready()).count();
        checks.push(check(
            "nodes",
            if total == 0 { "warn" } else { "pass" },
            format!("{total} nodes ({not_ready} NotReady): the rollout waits until the CNI runs on each and every node is Ready"),
        ));
        Ok(checks)
    }

    /// SelfSubjectAccessReviews for the verbs on each distinct resource.
    async fn permissions(
        &self,
        resolver: &mut Resolver,
        objects: &[ObjectRef],
        verbs: &[&str],
    ) -> Result<CheckView, RunError> {
        let mut wanted = BTreeSet::new();
        for o in objects {
            let Ok((group, plural, namespaced)) = resolver.resource(o).await else {
                continue;
            };
            let ns = if namespaced {
                Some(o.namespace.clone().unwrap_or_else(|| "default".into()))
            } else {
                None
            };
            for v in verbs {
                wanted.insert((group.clone(), plural.clone(), ns.clone(), (*v).to_owned()));
            }
        }
        let api: Api<SelfSubjectAccessReview> = Api::all(resolver.client().clone());
        let mut denied = Vec::new();
        for (group, resource, namespace, verb) in &wanted {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(group.clone()),
                        resource: Some(resource.clone()),
                        namespace: namespace.clone(),
                        verb: Some(verb.clone()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|source| KubeError::Call {
                    verb: "create",
                    object: "SelfSubjectAccessReview".into(),
                    source,
                })?;
            if !answer.status.is_some_and(|s| s.allowed) {
                let g = if group.is_empty() {
                    String::new()
                } else {
                    format!(".{group}")
                };
                denied.push(format!(
                    "{verb} {resource}{g}{}",
                    namespace
                        .as_ref()
                        .map(|n| format!(" in {n}"))
                        .unwrap_or_default()
                ));
            }
        }
        Ok(if denied.is_empty() {
            check(
                "permissions",
                "pass",
                format!("allowed: {} (resource, verb) pairs checked", wanted.len()),
            )
        } else {
            check(
                "permissions",
                "fail",
                format!("not allowed: {}", denied.join(", ")),
            )
        })
    }

    /// Starts an install after the user confirmed `expected_hash`.
    ///
    /// # Errors
    /// As [`Runs::plan_install`], plus confirmation, plan change, failed checks, a busy cluster.
    pub async fn start_install(
        &self,
        caller: &Caller,
        cluster: &str,
        params: &InstallParams,
        expected_hash: &str,
        confirmation: Confirmation,
    ) -> Result<RunId, RunError> {
        let manifest = manifests::load(&self.inner().store, &params.manifest_sha256).await?;
        let plan = self.plan_install(cluster, &manifest, params).await?;
        let objects = install_objects(&manifest, params)?;
        let mut steps = vec!["snapshot".to_owned()];
        for phase in Phase::ALL {
            if objects.iter().any(|o| o.phase() == phase) {
                steps.push(format!("apply {}", phase.as_str()));
                if phase == Phase::Crds {
                    steps.push("wait crds established".to_owned());
                }
            }
        }
        steps.push("rollout".to_owned());
        let params = serde_json::to_value(params).map_err(|e| RunError::Step(e.to_string()))?;
        self.launch(caller, plan, expected_hash, confirmation, params, steps)
            .await
    }

    /// Plans the rollback of a finished run: what it created is deleted, what it changed or
    /// deleted is put back as its snapshot.
    ///
    /// # Errors
    /// [`RunError::NotRollbackable`] when the run is not finished or touched nothing.
    pub async fn plan_rollback(&self, target: RunId) -> Result<PlanView, RunError> {
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
        let touched: Vec<ObjectRow> = inner
            .store
            .run_objects(target)
            .await?
            .into_iter()
            .filter(|o| o.done.is_some() && o.snapshot_taken)
            .collect();
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
            let before: Option<Value> =
                o.before
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| RunError::Step(format!("snapshot of {}: {e}", r.key())))?;
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
        let mut checks = vec![check("api", "pass", "API server reachable")];
        checks.push(
            self.permissions(&mut resolver, &refs, &["get", "update", "create", "delete"])
                .await?,
        );
        Ok(sealed(PlanView {
            cluster: run.cluster.clone(),
            workflow: Workflow::CniRollback.as_str().to_owned(),
            title: format!("rollback of run {} ({})", target.0, run.title),
            manifest_source: None,
            manifest_sha256: run.manifest_sha256.clone(),
            verified: false,
            options: vec![("run".into(), target.0.to_string())],
            objects: planned,
            checks,
            drain: None,
            reset: None,
            recovery: None,
            hash: String::new(),
        }))
    }

    /// Starts a rollback after the user confirmed `expected_hash`.
    ///
    /// # Errors
    /// As [`Runs::plan_rollback`], plus confirmation, plan change, a busy cluster.
    pub async fn start_rollback(
        &self,
        caller: &Caller,
        target: RunId,
        expected_hash: &str,
        confirmation: Confirmation,
    ) -> Result<RunId, RunError> {
        let plan = self.plan_rollback(target).await?;
        let steps = ["snapshot", "restore", "delete", "rollout", "verify"]
            .map(str::to_owned)
            .to_vec();
        self.launch(
            caller,
            plan,
            expected_hash,
            confirmation,
            json!({ "run": target.0 }),
            steps,
        )
        .await
    }

    /// Plans removing a catalog (or any) manifest's objects from a cluster: `kubectl delete -f`.
    ///
    /// # Errors
    /// [`RunError`] on an unparsable manifest or an unreachable API server.
    pub async fn plan_remove(
        &self,
        cluster: &str,
        manifest: &Manifest,
    ) -> Result<PlanView, RunError> {
        let inner = self.inner();
        let mut objects = parse(&manifest.text)?;
        objects.sort_by_key(ManifestObject::phase);
        manifests::store(&inner.store, manifest).await?;
        let client = self.client_of(cluster).await?;
        let mut resolver = Resolver::new(client);
        let mut planned = Vec::new();
        let mut present = 0;
        for o in &objects {
            let r = object_ref(o);
            let exists = match resolver.api(&r).await {
                Ok(api) => k8s::get(&api, &r).await?.is_some(),
                // The kind itself is gone (a CRD deleted earlier): so is the object.
                Err(KubeError::UnknownKind { .. }) => false,
                Err(e) => return Err(e.into()),
            };
            present += usize::from(exists);
            planned.push(PlannedObjectView {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                action: if exists {
                    Planned::Delete
                } else {
                    Planned::Absent
                },
                changes: Vec::new(),
                changes_total: 0,
            });
        }
        let mut checks = vec![if present == 0 {
            check(
                "present",
                "fail",
                "none of the manifest's objects is in the cluster: nothing to remove",
            )
        } else {
            check(
                "present",
                "pass",
                format!("{present} of {} objects are in the cluster", objects.len()),
            )
        }];
        checks.push(
            self.permissions(
                &mut resolver,
                &objects.iter().map(object_ref).collect::<Vec<_>>(),
                &["get", "delete"],
            )
            .await?,
        );
        checks.push(check("nodes", "warn", "without a CNI, nodes become NotReady and new pods get no network; files on the nodes (/etc/cni/net.d) stay"));
        let title = match manifest.catalog {
            Some(e) => format!("remove {} {}", e.cni, e.version),
            None => format!("remove {} (unverified)", manifest.source),
        };
        Ok(sealed(PlanView {
            cluster: cluster.to_owned(),
            workflow: Workflow::CniRemove.as_str().to_owned(),
            title,
            manifest_source: Some(manifest.source.clone()),
            manifest_sha256: Some(manifest.sha256.clone()),
            verified: manifest.verified(),
            options: Vec::new(),
            objects: planned,
            checks,
            drain: None,
            reset: None,
            recovery: None,
            hash: String::new(),
        }))
    }

    /// Starts a removal after the user confirmed `expected_hash`.
    ///
    /// # Errors
    /// As [`Runs::plan_remove`], plus confirmation, plan change, a busy cluster.
    pub async fn start_remove(
        &self,
        caller: &Caller,
        cluster: &str,
        manifest_sha256: &str,
        expected_hash: &str,
        confirmation: Confirmation,
    ) -> Result<RunId, RunError> {
        let manifest = manifests::load(&self.inner().store, manifest_sha256).await?;
        let plan = self.plan_remove(cluster, &manifest).await?;
        let steps = ["snapshot", "delete"].map(str::to_owned).to_vec();
        self.launch(
            caller,
            plan,
            expected_hash,
            confirmation,
            json!({ "manifest_sha256": manifest_sha256 }),
            steps,
        )
        .await
    }
}

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

    pub(crate) async fn run_step(
        &mut self,
        workflow: Workflow,
        idx: i64,
        name: &str,
    ) -> Result<(), RunError> {
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

/// What applying `value` would do to `r`: create, update (with the field diff of a server-side
/// dry run) or nothing. `api` is `None` for a kind the manifest's own CRDs define; `in_new_ns`
/// when the object's namespace is created by the manifest (a dry run would fail on that alone).
async fn plan_object(
    r: &ObjectRef,
    api: Option<&Api<DynamicObject>>,
    value: &Value,
    in_new_ns: bool,
) -> Result<PlannedObjectView, KubeError> {
    let create = PlannedObjectView {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        action: Planned::Create,
        changes: Vec::new(),
        changes_total: 0,
    };
    let Some(api) = api else {
        return Ok(create);
    };
    let current = k8s::get(api, r).await?;
    if current.is_none() && in_new_ns {
        return Ok(create);
    }
    // The dry run checks every object as the API server would take it, new ones too.
    let after = k8s::apply(api, r, value, true).await?;
    Ok(match current {
        None => create,
        Some(current) => {
            let (changes, total) = k8s::diff(&current, &after);
            PlannedObjectView {
                action: if total == 0 {
                    Planned::Unchanged
                } else {
                    Planned::Update
                },
                changes,
                changes_total: total,
                ..create
            }
        }
    })
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
