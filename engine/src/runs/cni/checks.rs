//! The preflight checks of a CNI plan: other CNIs, the pool against node addresses and kubeadm's
//! subnets, the node count, and the permissions the run needs.

use grappe_views::vocab::Level;
use std::collections::BTreeSet;

use grappe_views::runs::CheckView;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::*;
use crate::diagnostics::detect_cnis;
use crate::manifests::Manifest;
use crate::names::ClusterName;
use crate::net::Cidr;
use crate::runs::k8s::{KubeError, ObjectRef, Resolver};
use crate::runs::{RunError, Runs, check};

impl Runs {
    /// Checks from the live state: other CNIs, the pool against node addresses, kubeadm's
    /// subnets, and the node count.
    pub(super) fn state_checks(
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
                Level::Fail,
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
                Level::Fail,
                "the cluster's state has not been read yet: try again in a moment",
            ));
            return Ok(checks);
        }
        let stores = state.read();
        let installed = detect_cnis(&stores);
        let version = manifest.catalog.map(|e| e.version);
        match cni.filter(|_| !params.migrate) {
            // A migration's own check says what is installed (compat-method).
            _ if params.migrate => {}
            Some(cni) => {
                let others: Vec<String> = installed
                    .iter()
                    .filter(|(kind, _, _)| kind != cni)
                    .map(|(kind, v, ds)| format!("{kind} {} ({ds})", v.as_deref().unwrap_or("?")))
                    .collect();
                if !others.is_empty() {
                    checks.push(check(
                        "cni",
                        Level::Fail,
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
                            Level::Warn,
                            format!("upgrade: {cni} {from} ({ds}) to {}", version.unwrap_or("?")),
                        ));
                    } else {
                        checks.push(check("cni", Level::Pass, format!("{cni} {from} is already installed ({ds}): the objects are applied again")));
                    }
                } else {
                    checks.push(check("cni", Level::Pass, "no CNI installed"));
                }
            }
            None => checks.push(check(
                "cni",
                Level::Warn,
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
        // A migration keeps the installed pools: the operator reads them.
        if cni == Some("Calico") && !params.migrate {
            let options = params.calico()?;
            let pod_subnet: Option<Cidr> =
                kubeadm.pod_subnet.as_deref().and_then(|s| s.parse().ok());
            let (pool, from) = match (options.ipv4pool_cidr, pod_subnet) {
                (Some(c), _) => (c, "CALICO_IPV4POOL_CIDR"),
                (None, Some(p)) => (p, "kubeadm podSubnet"),
                (None, None) => (
                    CALICO_DEFAULT_POOL
                        .parse()
                        .map_err(|e| RunError::Corrupt(format!("Calico's default pool: {e}")))?,
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
                    Level::Pass,
                    format!(
                        "IP pool {pool} ({from}) does not overlap the {} node addresses",
                        nodes.len()
                    ),
                ));
            } else {
                let shown: Vec<&str> = inside.iter().take(5).map(String::as_str).collect();
                checks.push(check("pool", Level::Fail, format!(
                    "IP pool {pool} ({from}) contains {} node address(es): {}{}; choose another CALICO_IPV4POOL_CIDR",
                    inside.len(), shown.join(", "), if inside.len() > 5 { ", …" } else { "" }
                )));
            }
            if let Some(s) = service.filter(|s| s.overlaps(&pool)) {
                checks.push(check(
                    "service-subnet",
                    Level::Fail,
                    format!("IP pool {pool} overlaps the service subnet {s}"),
                ));
            }
            if let Some(p) = pod_subnet.filter(|p| from == "CALICO_IPV4POOL_CIDR" && *p != pool) {
                checks.push(check(
                    "pod-subnet",
                    Level::Warn,
                    format!("IP pool {pool} differs from kubeadm's podSubnet {p}"),
                ));
            }
        }
        let calico = installed
            .iter()
            .find(|(kind, _, _)| kind == "Calico")
            .map(|(_, v, ds)| (v.as_deref(), ds.as_str()));
        let month = crate::time::now().to_string();
        let kube_proxy = stores.kube_proxy_mode.as_ref().map(|m| m.0.as_str());
        let cluster = compat::Cluster {
            kubernetes: kubeadm.kubernetes_version.as_deref(),
            calico,
            kube_proxy,
            month: month.get(..7).unwrap_or_default(),
        };
        let method = if manifest.catalog.is_some_and(|e| e.operator()) {
            compat::Method::Operator
        } else {
            compat::Method::Manifest
        };
        let mut gate = compat::gate(&cluster, manifest.catalog, method);
        if params.migrate {
            gate.retain(|c| c.id != "compat-method");
            gate.push(compat::migration_check(&cluster, manifest.catalog));
        }
        checks.extend(gate);
        let total = stores.nodes.len();
        let not_ready = stores.nodes.values().filter(|n| !n.is_ready()).count();
        checks.push(check(
            "nodes",
            if total == 0 { Level::Warn } else { Level::Pass },
            format!("{total} nodes ({not_ready} NotReady): the rollout waits until the CNI runs on each and every node is Ready"),
        ));
        Ok(checks)
    }

    /// SelfSubjectAccessReviews for the verbs on each distinct resource.
    pub(super) async fn permissions(
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
                Level::Pass,
                format!("allowed: {} (resource, verb) pairs checked", wanted.len()),
            )
        } else {
            check(
                "permissions",
                Level::Fail,
                format!("not allowed: {}", denied.join(", ")),
            )
        })
    }
}
