//! The CNI workflows on the run engine: install (or upgrade) from a manifest, roll back a
//! finished run, and remove a catalog manifest's objects (a CNI installed outside Grappe). Each
//! has a plan, computed without changing anything, and idempotent steps.

use std::time::Duration;

use serde_json::Value;

use super::k8s::ObjectRef;
use super::registry::{Kind, Load, Loading, Policy, Preparing, loading, request};
use super::{RunError, Runs, Workflow};
use crate::manifests::Manifest;
use crate::manifests::operator::OperatorOptions;
use crate::manifests::parse::{CalicoOptions, ManifestObject, apply_calico_options, parse};
use crate::model::{ObjectRow, Plan};
use crate::names::ClusterName;
use crate::net::Cidr;

/// Calico's default pool when neither the option nor kubeadm's podSubnet says otherwise.
const CALICO_DEFAULT_POOL: &str = "192.168.0.0/16";
/// How long a run waits for the rollout unless its parameters say otherwise.
pub const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the CRDs of a manifest may take to be Established.
const CRDS_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a CRD's deletion waits for its custom resources to be served.
const SERVED_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a deletion may take before the step fails.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a deletion that takes its time says what still holds the object.
const WAITING_REPORT: Duration = Duration::from_secs(15);

/// Requests in flight at once while planning, snapshotting and applying.
const CONCURRENCY: usize = 4;

/// A typed request or parameters as JSON (what a plan records, what a run stores).
fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, RunError> {
    serde_json::to_value(value).map_err(RunError::Encode)
}

/// The options of an install, as recorded in the run's parameters (and its request).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallParams {
    pub manifest_sha256: String,
    pub ipv4pool_cidr: Option<String>,
    pub ip_autodetection_method: Option<String>,
    /// The Tigera operator's options (an operator catalog entry only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorOptions>,
    /// Hand a manifest install (kube-system) to the operator instead of installing beside it
    /// (an operator entry only; the operator reads the settings, so no option is given).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrate: bool,
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
                        .map_err(|e| RunError::Invalid(format!("CALICO_IPV4POOL_CIDR {s:?}: {e}")))
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

/// The manifest's objects with the install options applied, in apply order. For an operator
/// entry: its CRDs and operator, then the custom resources made from the options (the pool is
/// the one the plan resolved and recorded).
fn install_objects(
    manifest: &Manifest,
    params: &InstallParams,
) -> Result<Vec<ManifestObject>, RunError> {
    let mut objects = parse(&manifest.text)?;
    if params.migrate {
        migrate::check_target(manifest, params)?;
        objects.push(crate::manifests::operator::migration_installation());
        objects.sort_by_key(ManifestObject::phase);
        return Ok(objects);
    }
    let options = params.calico()?;
    match (
        manifest.catalog.is_some_and(|e| e.operator()),
        &params.operator,
    ) {
        (true, operator) => {
            let pool = options.ipv4pool_cidr.ok_or_else(|| {
                RunError::Invalid("an operator install needs its pool's CIDR".into())
            })?;
            let custom = operator
                .clone()
                .unwrap_or_default()
                .custom_resources(&pool, options.ip_autodetection_method.as_deref())
                .map_err(|e| RunError::Invalid(e.to_string()))?;
            objects.extend(custom);
        }
        (false, Some(_)) => {
            return Err(RunError::Invalid(
                "block size, encapsulation, MTU and components are options of the Tigera operator's entries".into(),
            ));
        }
        (false, None) if options != CalicoOptions::default() => {
            apply_calico_options(&mut objects, &options)?;
        }
        (false, None) => {}
    }
    objects.sort_by_key(ManifestObject::phase);
    Ok(objects)
}

/// A plan of `workflow` for `manifest` on `cluster`, titled after the manifest (`Calico
/// v3.25.1`, `<url> (unverified)`) behind `verb`; objects, checks and options left to fill.
fn manifest_plan(
    cluster: &ClusterName,
    workflow: Workflow,
    manifest: &Manifest,
    verb: &str,
    request: Value,
) -> Plan {
    let what = match manifest.catalog {
        Some(e) => format!("{} {}", e.cni, e.version),
        None => format!("{} (unverified)", manifest.source),
    };
    Plan {
        manifest_source: Some(manifest.source.clone()),
        manifest_sha256: Some(manifest.sha256.clone()),
        verified: manifest.verified(),
        ..Plan::new(cluster, workflow, format!("{verb}{what}"), request)
    }
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

mod checks;
pub mod compat;
mod install;
mod leaks;
mod migrate;
mod remove;
mod risk;
mod rollback;
mod rollout;
mod steps;
mod undo;

pub use leaks::{DEFAULT_GRACE_SECONDS, ReleaseRequest};
pub use remove::RemoveRequest;
pub(crate) use rollback::ROLLBACK_STEPS;
pub use rollback::RollbackRequest;
pub(crate) use steps::StepContext;

/// The CNI workflows (`cni.install`, `cni.migrate`, `cni.rollback`, `cni.remove`): one executor, told apart by
/// the run's workflow id. Admin only; every one can be rolled back once finished.
pub(crate) struct Cni(Workflow);

/// The CNI kinds, for the registry.
pub(crate) fn kinds() -> Vec<Box<dyn Kind>> {
    [
        Workflow::CniInstall,
        Workflow::CniMigrate,
        Workflow::IpamRelease,
        Workflow::CniRollback,
        Workflow::CniRemove,
    ]
    .into_iter()
    .map(|w| Box::new(Cni(w)) as Box<dyn Kind>)
    .collect()
}

impl Kind for Cni {
    fn id(&self) -> Workflow {
        self.0
    }

    fn policy(&self) -> Policy {
        Policy {
            roll_back: true,
            ..Policy::ADMIN
        }
    }

    fn prepare<'a>(
        &'a self,
        runs: &'a Runs,
        cluster: &'a ClusterName,
        req: &'a Value,
        _offer: bool,
    ) -> Preparing<'a> {
        Box::pin(async move {
            match self.0 {
                Workflow::CniInstall | Workflow::CniMigrate => {
                    runs.prepare_install(cluster, &request(req)?).await
                }
                Workflow::CniRemove => runs.prepare_remove(cluster, &request(req)?).await,
                Workflow::IpamRelease => runs.prepare_ipam_release(cluster, &request(req)?).await,
                _ => runs.prepare_rollback(cluster, request(req)?).await,
            }
        })
    }

    fn executor<'a>(&'a self, at: Load<'a>) -> Loading<'a> {
        loading(StepContext::load(at.runs, at.run, at.cancel))
    }
}
