//! The slim records kept per watched object: only the fields the views and the diagnostics
//! read, so that 5,000 nodes and 150,000 pods fit in a small fraction of what full objects
//! would take. Conversions from the Kubernetes types live here too.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use crate::names::untrusted_text;

/// The bound of a short text from a cluster (an annotation shown as an address, a reason, a
/// custom resource's field): longer ones are cut with `…`.
const SHORT_TEXT: usize = 256;

/// Seconds since the Unix epoch (0 when Kubernetes gave no time).
pub type UnixSeconds = i64;

fn secs(t: Option<&Time>) -> UnixSeconds {
    t.map_or(0, |t| t.0.as_second())
}

/// One node condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition: UnixSeconds,
    // No heartbeat time: kubelets rewrite it every few seconds, and keeping it would make each
    // heartbeat a change pushed to every browser.
}

/// One taint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// What Grappe keeps of a Node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub created: UnixSeconds,
    /// From the `node-role.kubernetes.io/<role>` labels, sorted.
    pub roles: Vec<String>,
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub conditions: Vec<Condition>,
    /// `(type, address)` pairs in the order the kubelet reported them.
    pub addresses: Vec<(String, String)>,
    pub pod_cidrs: Vec<String>,
    pub kubelet_version: String,
    pub os_image: String,
    pub kernel_version: String,
    pub container_runtime: String,
    /// `projectcalico.org/IPv4Address` (with its prefix length, as Calico writes it).
    pub calico_ipv4: Option<String>,
    /// `projectcalico.org/IPv4IPIPTunnelAddr` or `IPv4VXLANTunnelAddr`.
    pub calico_tunnel: Option<String>,
    /// Calico set up the node's IPIP tunnel (`IPv4IPIPTunnelAddr`).
    pub ipip_tunnel: bool,
    /// Calico set up the node's VXLAN tunnel (`IPv4VXLANTunnelAddr`).
    pub vxlan_tunnel: bool,
    /// `projectcalico.org/RouteReflectorClusterID`: the node is a route reflector.
    pub rr_cluster_id: Option<String>,
    /// Its labels (at most [`MAX_LABELS`], bounded): what DaemonSets select nodes by.
    pub labels: BTreeMap<String, String>,
}

/// The most labels kept per node.
pub const MAX_LABELS: usize = 64;

impl NodeInfo {
    pub fn from_node(node: Node) -> Option<Self> {
        let meta = node.metadata;
        let name = meta.name?;
        let labels = meta.labels.unwrap_or_default();
        let annotations = meta.annotations.unwrap_or_default();
        let mut roles: Vec<String> = labels
            .keys()
            .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        roles.sort();
        let spec = node.spec.unwrap_or_default();
        let status = node.status.unwrap_or_default();
        let info = status.node_info.unwrap_or_default();
        let mut pod_cidrs = spec.pod_cidrs.unwrap_or_default();
        if pod_cidrs.is_empty()
            && let Some(c) = spec.pod_cidr
        {
            pod_cidrs.push(c);
        }
        Some(Self {
            name,
            created: secs(meta.creation_timestamp.as_ref()),
            roles,
            unschedulable: spec.unschedulable.unwrap_or(false),
            taints: spec
                .taints
                .unwrap_or_default()
                .into_iter()
                .map(|t| Taint {
                    key: t.key,
                    value: t.value.unwrap_or_default(),
                    effect: t.effect,
                })
                .collect(),
            conditions: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| Condition {
                    kind: c.type_,
                    status: c.status,
                    reason: c.reason.unwrap_or_default(),
                    message: untrusted_text(&c.message.unwrap_or_default(), 1024),
                    last_transition: secs(c.last_transition_time.as_ref()),
                })
                .collect(),
            addresses: status
                .addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.type_, a.address))
                .collect(),
            pod_cidrs,
            kubelet_version: info.kubelet_version,
            os_image: info.os_image,
            kernel_version: info.kernel_version,
            container_runtime: info.container_runtime_version,
            // Annotations are anyone's text: bounded and neutralised like events.
            calico_ipv4: annotations
                .get("projectcalico.org/IPv4Address")
                .map(|a| untrusted_text(a, SHORT_TEXT)),
            calico_tunnel: annotations
                .get("projectcalico.org/IPv4IPIPTunnelAddr")
                .or_else(|| annotations.get("projectcalico.org/IPv4VXLANTunnelAddr"))
                .map(|a| untrusted_text(a, SHORT_TEXT)),
            ipip_tunnel: annotations.contains_key("projectcalico.org/IPv4IPIPTunnelAddr"),
            vxlan_tunnel: annotations.contains_key("projectcalico.org/IPv4VXLANTunnelAddr"),
            rr_cluster_id: annotations
                .get("projectcalico.org/RouteReflectorClusterID")
                .map(|a| untrusted_text(a, SHORT_TEXT)),
            labels: labels
                .iter()
                .take(MAX_LABELS)
                .map(|(k, v)| (untrusted_text(k, SHORT_TEXT), untrusted_text(v, SHORT_TEXT)))
                .collect(),
        })
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// `Ready` is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }

    pub fn internal_ip(&self) -> Option<&str> {
        self.addresses
            .iter()
            .find(|(kind, _)| kind == "InternalIP")
            .map(|(_, a)| a.as_str())
    }

    /// What `kubectl get nodes` prints in STATUS: `Ready`, `NotReady` or `Unknown`, with
    /// `,SchedulingDisabled` when cordoned.
    pub fn status_text(&self) -> String {
        let base = match self.condition("Ready").map(|c| c.status.as_str()) {
            Some("True") => "Ready",
            Some("False") => "NotReady",
            _ => "Unknown",
        };
        if self.unschedulable {
            format!("{base},SchedulingDisabled")
        } else {
            base.to_owned()
        }
    }
}

/// Who owns a pod (its first owner reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// What Grappe keeps of a Pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub ip: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    pub owner: Option<Owner>,
    pub created: UnixSeconds,
    pub deleting: bool,
    /// The `k8s-app` label (how Calico's and CoreDNS's pods are recognised).
    pub app: Option<String>,
    /// A waiting container's reason (`CrashLoopBackOff`, `ContainerCreating`, ...), init
    /// containers first.
    pub waiting_reason: Option<String>,
    /// The last termination of a container: reason and message.
    pub last_termination: Option<(String, String)>,
}

impl PodInfo {
    /// Whether the pod finished (phase Succeeded or Failed): its containers are gone and so is
    /// its network, though its status keeps the address it had.
    pub fn finished(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }

    pub fn from_pod(pod: Pod) -> Option<Self> {
        let meta = pod.metadata;
        let name = meta.name?;
        let namespace = meta.namespace.unwrap_or_default();
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let containers = status.container_statuses.unwrap_or_default();
        let inits = status.init_container_statuses.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let waiting = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
            let reason = c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()?;
            Some(untrusted_text(reason, SHORT_TEXT))
        };
        // Init containers first, as kubectl shows them (`Init:CrashLoopBackOff`).
        let waiting_reason = inits
            .iter()
            .find_map(waiting)
            .map(|r| format!("Init:{r}"))
            .or_else(|| containers.iter().find_map(waiting));
        let last_termination = containers
            .iter()
            .chain(inits.iter())
            .find_map(|c| c.last_state.as_ref()?.terminated.as_ref())
            .map(|t| {
                (
                    untrusted_text(t.reason.as_deref().unwrap_or_default(), SHORT_TEXT),
                    untrusted_text(t.message.as_deref().unwrap_or_default(), 1024),
                )
            });
        Some(Self {
            owner: meta
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .next()
                .map(|o| Owner {
                    kind: o.kind,
                    name: o.name,
                }),
            app: meta.labels.unwrap_or_default().remove("k8s-app"),
            created: secs(meta.creation_timestamp.as_ref()),
            deleting: meta.deletion_timestamp.is_some(),
            namespace,
            name,
            node: spec.node_name,
            ip: status.pod_ip,
            phase: status.phase.unwrap_or_else(|| "Pending".to_owned()),
            ready,
            restarts: containers.iter().map(|c| c.restart_count).sum(),
            waiting_reason,
            last_termination,
        })
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A Warning event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventInfo {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: UnixSeconds,
}

/// An event's message kept at most this long (an event may carry 1.5 MiB).
pub const EVENT_MESSAGE_BYTES: usize = 2048;

impl EventInfo {
    /// An event as it is kept: its texts bounded and neutralised ([`untrusted_text`]), its
    /// time no later than now (its creator sets it, and a time in the future would keep it
    /// first and push real warnings out of the capped list).
    pub fn from_event(e: Event) -> Option<Self> {
        let last_seen = secs(e.last_timestamp.as_ref())
            .max(e.event_time.as_ref().map_or(0, |t| t.0.as_second()))
            .max(secs(e.metadata.creation_timestamp.as_ref()))
            .min(crate::time::now().unix_seconds());
        let text = |s: Option<String>, max| untrusted_text(&s.unwrap_or_default(), max);
        Some(Self {
            uid: e.metadata.uid?,
            kind: text(e.involved_object.kind, 64),
            namespace: text(e.involved_object.namespace, 253),
            name: text(e.involved_object.name, 253),
            reason: text(e.reason, 128),
            message: text(e.message, EVENT_MESSAGE_BYTES),
            count: e.count.unwrap_or(1),
            last_seen,
        })
    }
}

/// The networking part of kubeadm's ClusterConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KubeadmNetworking {
    pub pod_subnet: Option<String>,
    pub service_subnet: Option<String>,
    pub kubernetes_version: Option<String>,
}

impl KubeadmNetworking {
    /// Reads `kube-system/kubeadm-config`'s `ClusterConfiguration`.
    pub fn from_configmap(cm: ConfigMap) -> Self {
        cm.data
            .unwrap_or_default()
            .get("ClusterConfiguration")
            .map(|text| Self::parse(text))
            .unwrap_or_default()
    }

    /// kubeadm writes this document itself, in block style: `networking:` with indented
    /// `podSubnet:` / `serviceSubnet:` keys, and a top-level `kubernetesVersion:`. Read those
    /// keys without a full YAML parser (quotes removed).
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        let mut in_networking = false;
        for line in text.lines() {
            let indented = line.starts_with(' ') || line.starts_with('\t');
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if !indented {
                in_networking = trimmed == "networking:";
            }
            let Some((key, value)) = trimmed.split_once(':') else {
                continue;
            };
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            let value = (!value.is_empty()).then(|| untrusted_text(value, SHORT_TEXT));
            match (indented, in_networking, key.trim()) {
                (true, true, "podSubnet") => out.pod_subnet = value,
                (true, true, "serviceSubnet") => out.service_subnet = value,
                (false, _, "kubernetesVersion") => out.kubernetes_version = value,
                _ => {}
            }
        }
        out
    }
}

mod calico;
mod facts;
mod operator;
mod placement;
mod workload;
pub use facts::HostFacts;
pub use operator::{ApiServiceInfo, InstallationInfo, TigeraStatusInfo};
pub use placement::{Miss, Placement};
pub use workload::{PdbInfo, WorkloadInfo};

pub use calico::*;

#[cfg(test)]
mod tests;
