//! The install (or upgrade) plan from a manifest and its start.

use grappe_views::vocab::Level;
use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use grappe_views::runs::{Planned, PlannedObjectView};
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use super::*;
use crate::manifests::parse::Phase;
use crate::manifests::{self, Manifest};
use crate::model::Plan;
use crate::runs::Launch;
use crate::runs::k8s::{self, KubeError, ObjectRef, Resolver};
use crate::runs::{RunError, RunStatus, Runs, Workflow, check, sealed};
use grappe_views::runs::CheckView;

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
        cluster: &ClusterName,
        manifest: &Manifest,
        params: &InstallParams,
    ) -> Result<Plan, RunError> {
        let inner = self.inner();
        let params = &self.operator_pool(cluster, manifest, params);
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
        let mut checks = vec![check("api", Level::Pass, "API server reachable")];
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
        let mut planned: Vec<PlannedObjectView> = futures::stream::iter(todo)
            .map(|(r, api, value, in_new_ns)| async move {
                plan_object(&r, api.as_ref(), &value, in_new_ns).await
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        if params.migrate {
            planned.extend(self.handover_rows(&mut resolver).await?);
        }
        let mut options = Vec::new();
        if params.migrate {
            options.push((
                "migrate".to_owned(),
                "kube-system (manifest) -> calico-system (operator)".to_owned(),
            ));
        }
        if let Some(c) = &params.ipv4pool_cidr {
            options.push(("CALICO_IPV4POOL_CIDR".to_owned(), c.clone()));
        }
        if let Some(m) = &params.ip_autodetection_method {
            options.push(("IP_AUTODETECTION_METHOD".to_owned(), m.clone()));
        }
        if manifest.catalog.is_some_and(|e| e.operator()) && !params.migrate {
            options.extend(params.operator.clone().unwrap_or_default().shown());
        }
        checks.extend(self.state_checks(cluster, cni.as_deref(), manifest, params)?);
        if !manifest.verified() {
            checks.extend(super::risk::risky_objects(&objects));
        }
        if params.migrate {
            checks.push(self.migration_leftovers(&mut resolver).await?);
        } else {
            checks.extend(self.left_behind(cluster, manifest, &objects).await?);
        }
        checks.push(
            self.permissions(
                &mut resolver,
                &planned
                    .iter()
                    .map(|o| ObjectRef {
                        api_version: o.api_version.clone(),
                        kind: o.kind.clone(),
                        namespace: o.namespace.clone(),
                        name: o.name.clone(),
                    })
                    .collect::<Vec<_>>(),
                &["get", "create", "patch"],
            )
            .await?,
        );
        let request = to_value(params)?;
        let (workflow, verb) = if params.migrate {
            (
                Workflow::CniMigrate,
                "migration of the manifest install to ",
            )
        } else {
            (Workflow::CniInstall, "")
        };
        Ok(sealed(Plan {
            options,
            objects: planned,
            checks,
            ..manifest_plan(cluster, workflow, manifest, verb, request)
        }))
    }

    /// The install's options with, for an operator entry without a pool, the pool it gets:
    /// kubeadm's podSubnet, else Calico's default (recorded with the run, so that the run
    /// applies what the plan showed).
    fn operator_pool(
        &self,
        cluster: &ClusterName,
        manifest: &Manifest,
        params: &InstallParams,
    ) -> InstallParams {
        let mut params = params.clone();
        let unset = params
            .ipv4pool_cidr
            .as_deref()
            .is_none_or(|c| c.trim().is_empty());
        if manifest.catalog.is_some_and(|e| e.operator()) && unset && !params.migrate {
            let pod_subnet = self
                .inner()
                .states
                .get(cluster)
                .and_then(|s| s.read().kubeadm.as_ref().and_then(|k| k.pod_subnet.clone()));
            params.ipv4pool_cidr = Some(pod_subnet.unwrap_or_else(|| CALICO_DEFAULT_POOL.into()));
        }
        params
    }

    /// For an upgrade of a CNI Grappe installed: the objects of the installed manifest that
    /// the new one no longer has. Applying a manifest leaves them in place (as `kubectl apply`
    /// does); the plan says which, so that the admin can remove them.
    async fn left_behind(
        &self,
        cluster: &ClusterName,
        manifest: &Manifest,
        objects: &[ManifestObject],
    ) -> Result<Option<CheckView>, RunError> {
        let Some(entry) = manifest.catalog else {
            return Ok(None);
        };
        let installed = self.inner().states.get(cluster).and_then(|s| {
            crate::diagnostics::detect_cnis(&s.read())
                .into_iter()
                .find(|(kind, _, _)| kind == entry.cni)
                .and_then(|(_, version, _)| version)
        });
        let Some(installed) = installed.filter(|v| v != entry.version) else {
            return Ok(None);
        };
        let runs = self
            .list(Some(cluster.as_str()), Some("cni.install"), 50)
            .await?;
        let previous = runs.iter().find(|r| {
            r.status == RunStatus::Succeeded
                && r.manifest_sha256
                    .as_deref()
                    .and_then(manifests::by_checksum)
                    .is_some_and(|e| {
                        e.cni == entry.cni
                            && e.version == installed
                            && e.packaging == entry.packaging
                    })
        });
        let Some(sha) = previous.and_then(|r| r.manifest_sha256.as_deref()) else {
            return Ok(None);
        };
        let old = manifests::load(&self.inner().store, sha).await?;
        let new: BTreeSet<String> = objects.iter().map(|o| object_ref(o).key()).collect();
        let gone: Vec<String> = parse(&old.text)?
            .iter()
            .map(|o| object_ref(o).key())
            .filter(|key| !new.contains(key))
            .collect();
        if gone.is_empty() {
            return Ok(Some(check(
                "left-behind",
                Level::Pass,
                format!(
                    "every object of {} {installed} is in {}",
                    entry.cni, entry.version
                ),
            )));
        }
        let shown: Vec<&str> = gone.iter().take(8).map(String::as_str).collect();
        Ok(Some(check(
            "left-behind",
            Level::Warn,
            format!(
                "{} object(s) of {} {installed} are not in {}: applying leaves them in place (as kubectl apply does); remove them once the upgrade is done: {}{}",
                gone.len(),
                entry.cni,
                entry.version,
                shown.join(", "),
                if gone.len() > 8 { ", …" } else { "" }
            ),
        )))
    }

    /// The install (or upgrade) a confirmed request starts: the stored manifest planned again.
    pub(super) async fn prepare_install(
        &self,
        cluster: &ClusterName,
        params: &InstallParams,
    ) -> Result<Launch, RunError> {
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
        if params.migrate {
            steps.push("migrate nodes".to_owned());
        }
        steps.push("rollout".to_owned());
        Ok(Launch::new(plan, to_value(params)?, steps))
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

impl Runs {
    /// One object of a manifest as an install would apply it (the install's options in it), as
    /// YAML, for the admin who reads an unverified manifest's plan object by object; a Secret's
    /// values are shown as digests. `None` when the manifest has no such object.
    ///
    /// # Errors
    /// [`RunError`]: the manifest is not stored, cannot be parsed, or an option is invalid.
    pub async fn planned_object_yaml(
        &self,
        params: &InstallParams,
        object: &ObjectRef,
    ) -> Result<Option<String>, RunError> {
        let manifest = manifests::load(&self.inner().store, &params.manifest_sha256).await?;
        object_yaml(&manifest, params, object)
    }
}

/// [`Runs::planned_object_yaml`] of a loaded manifest.
fn object_yaml(
    manifest: &Manifest,
    params: &InstallParams,
    object: &ObjectRef,
) -> Result<Option<String>, RunError> {
    let objects = install_objects(manifest, params)?;
    objects
        .iter()
        .find(|o| object_ref(o) == *object)
        .map(|o| {
            serde_yaml::to_string(&k8s::without_secret_values(&o.value))
                .map_err(|e| RunError::Corrupt(format!("YAML of {}: {e}", object.key())))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1
kind: Secret
metadata:
  name: token
  namespace: kube-system
stringData:
  token: hunter2-very-secret
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: kube-system
data:
  mode: vxlan
";

    fn object(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("kube-system".into()),
            name: name.into(),
        }
    }

    #[test]
    fn an_object_shows_as_yaml_and_a_secret_without_its_values() {
        let manifest =
            Manifest::from_bytes(MANIFEST.as_bytes().to_vec(), "paste".into()).expect("a manifest");
        let params = InstallParams {
            manifest_sha256: manifest.sha256.clone(),
            ..InstallParams::default()
        };
        let yaml = object_yaml(&manifest, &params, &object("ConfigMap", "settings"))
            .expect("yaml")
            .expect("the object");
        assert!(yaml.contains("mode: vxlan"), "{yaml}");
        let secret = object_yaml(&manifest, &params, &object("Secret", "token"))
            .expect("yaml")
            .expect("the object");
        assert!(!secret.contains("hunter2"), "{secret}");
        assert!(secret.contains("secret value, sha256 "), "{secret}");
        assert_eq!(
            object_yaml(&manifest, &params, &object("ConfigMap", "other")).expect("yaml"),
            None
        );
    }
}
