//! The removal of a manifest's objects (`kubectl delete -f`) and its start.

use grappe_views::runs::{PlanView, Planned, PlannedObjectView};
use grappe_views::vocab::Level;
use serde_json::json;

use super::*;
use crate::audit::Caller;
use crate::manifests::parse::{ManifestObject, parse};
use crate::manifests::{self, Manifest};
use crate::runs::Launch;
use crate::runs::k8s::{self, KubeError, Resolver};
use crate::runs::{Confirmation, RunError, RunId, Runs, Workflow, check, sealed};

impl Runs {
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
                Level::Fail,
                "none of the manifest's objects is in the cluster: nothing to remove",
            )
        } else {
            check(
                "present",
                Level::Pass,
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
        checks.push(check("nodes", Level::Warn, "without a CNI, nodes become NotReady and new pods get no network; files on the nodes (/etc/cni/net.d) stay"));
        Ok(sealed(PlanView {
            objects: planned,
            checks,
            ..manifest_plan(cluster, Workflow::CniRemove, manifest, "remove ")
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
