//! The records of workloads (DaemonSets and Deployments: rollout counters, images, placement)
//! and of PodDisruptionBudgets.

use std::collections::BTreeMap;

use grappe_views::WorkloadView;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;

use super::Placement;

/// A DaemonSet or a Deployment: its rollout counters (as the pages show them) and its images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadInfo {
    pub rollout: WorkloadView,
    pub images: Vec<String>,
    /// Where its pods may run (DaemonSets; the default for Deployments).
    pub placement: Placement,
}

impl WorkloadInfo {
    pub fn from_daemonset(ds: DaemonSet) -> Option<Self> {
        let status = ds.status.unwrap_or_default();
        Some(Self {
            rollout: WorkloadView {
                namespace: ds.metadata.namespace.unwrap_or_default(),
                name: ds.metadata.name?,
                desired: status.desired_number_scheduled,
                ready: status.number_ready,
                available: status.number_available.unwrap_or(0),
                unavailable: status.number_unavailable.unwrap_or(0),
                updated: status.updated_number_scheduled.unwrap_or(0),
            },
            placement: Placement::of(ds.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
            images: images(ds.spec.and_then(|s| s.template.spec)),
        })
    }

    pub fn from_deployment(d: Deployment) -> Option<Self> {
        let status = d.status.unwrap_or_default();
        let spec = d.spec.unwrap_or_default();
        Some(Self {
            rollout: WorkloadView {
                namespace: d.metadata.namespace.unwrap_or_default(),
                name: d.metadata.name?,
                desired: spec.replicas.unwrap_or(1),
                ready: status.ready_replicas.unwrap_or(0),
                available: status.available_replicas.unwrap_or(0),
                unavailable: status.unavailable_replicas.unwrap_or(0),
                updated: status.updated_replicas.unwrap_or(0),
            },
            images: images(spec.template.spec),
            placement: Placement::default(),
        })
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.rollout.namespace, self.rollout.name)
    }

    /// The first image whose reference contains `needle` (`calico/node`).
    pub fn image_with(&self, needle: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|i| i.contains(needle))
            .map(String::as_str)
    }

    /// The first image whose repository (without its tag or digest) is `repo` or ends with
    /// `/repo`: `calico/node` is `quay.io/calico/node:v3.32.1`, not the operator's
    /// `calico/node-driver-registrar` of its csi-node-driver.
    pub fn image_of(&self, repo: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|i| {
                let name = i.split('@').next().unwrap_or(i);
                let name = match name.rsplit_once(':') {
                    Some((r, tag)) if !tag.contains('/') => r,
                    _ => name,
                };
                name == repo
                    || name
                        .strip_suffix(repo)
                        .is_some_and(|head| head.ends_with('/'))
            })
            .map(String::as_str)
    }
}

fn images(spec: Option<k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| s.containers.into_iter().filter_map(|c| c.image).collect())
        .unwrap_or_default()
}

/// A PodDisruptionBudget's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PdbInfo {
    pub namespace: String,
    pub name: String,
    pub disruptions_allowed: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
    pub selector: BTreeMap<String, String>,
}

impl PdbInfo {
    pub fn from_pdb(p: PodDisruptionBudget) -> Option<Self> {
        let status = p.status.unwrap_or_default();
        Some(Self {
            namespace: p.metadata.namespace.unwrap_or_default(),
            name: p.metadata.name?,
            disruptions_allowed: status.disruptions_allowed,
            current_healthy: status.current_healthy,
            desired_healthy: status.desired_healthy,
            expected_pods: status.expected_pods,
            selector: p
                .spec
                .and_then(|s| s.selector)
                .and_then(|s| s.match_labels)
                .unwrap_or_default(),
        })
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
