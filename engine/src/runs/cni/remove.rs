//! The removal of a manifest's objects (`kubectl delete -f`) and its start.

use grappe_views::runs::{Planned, PlannedObjectView};
use grappe_views::vocab::Level;
use serde::{Deserialize, Serialize};

use super::*;
use crate::manifests::parse::{ManifestObject, parse};
use crate::manifests::{self, Manifest};
use crate::model::Plan;
use crate::runs::Launch;
use crate::runs::k8s::{self, KubeError, Resolver};
use crate::runs::{RunError, Runs, Workflow, check, sealed};

/// What a removal is planned from: the stored manifest whose objects go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveRequest {
    pub manifest_sha256: String,
}

impl Runs {
    /// Plans removing a catalog (or any) manifest's objects from a cluster: `kubectl delete -f`.
    ///
    /// # Errors
    /// [`RunError`] on an unparsable manifest or an unreachable API server.
    pub async fn plan_remove(
        &self,
        cluster: &ClusterName,
        manifest: &Manifest,
    ) -> Result<Plan, RunError> {
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
        let request = to_value(&RemoveRequest {
            manifest_sha256: manifest.sha256.clone(),
        })?;
        Ok(sealed(Plan {
            objects: planned,
            checks,
            ..manifest_plan(cluster, Workflow::CniRemove, manifest, "remove ", request)
        }))
    }

    /// The removal a confirmed request starts: the stored manifest planned again.
    pub(super) async fn prepare_remove(
        &self,
        cluster: &ClusterName,
        request: &RemoveRequest,
    ) -> Result<Launch, RunError> {
        let manifest = manifests::load(&self.inner().store, &request.manifest_sha256).await?;
        let plan = self.plan_remove(cluster, &manifest).await?;
        let steps = ["snapshot", "delete"].map(str::to_owned).to_vec();
        Ok(Launch::new(plan, to_value(request)?, steps))
    }
}
