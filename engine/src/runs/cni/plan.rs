//! Plans of the CNI workflows (install or upgrade, rollback, removal) and their starts: each
//! computed without changing anything.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use grappe_views::runs::{CheckView, PlanView, Planned, PlannedObjectView};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

use super::*;
use crate::audit::Caller;
use crate::diagnostics::detect_cnis;
use crate::manifests::parse::{ManifestObject, Phase, parse};
use crate::manifests::{self, Manifest};
use crate::model::ObjectRow;
use crate::names::ClusterName;
use crate::net::Cidr;
use crate::runs::Launch;
use crate::runs::k8s::{self, KubeError, ObjectRef, Resolver};
use crate::runs::{
    Confirmation, RunError, RunId, RunStatus, Runs, Workflow, check, cluster_name, sealed,
};

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
        self.launch(
            caller,
            Launch::new(plan, params, steps),
            expected_hash,
            confirmation,
        )
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
        let launch = Launch {
            links: vec![("rollback_of", target)],
            ..Launch::new(plan, json!({ "run": target.0 }), steps)
        };
        self.launch(caller, launch, expected_hash, confirmation)
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
        let params = json!({ "manifest_sha256": manifest_sha256 });
        self.launch(
            caller,
            Launch::new(plan, params, steps),
            expected_hash,
            confirmation,
        )
        .await
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
