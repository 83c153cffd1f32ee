//! The shapes of Grappe's cluster views: what the engine computes from its live cluster state
//! and what the pages show. Plain data with serde, compiled into the server and into the wasm.
//! Times are preformatted on the server (`2026-11-28T09:30:00Z`, ages like `5d`) so that the
//! server's HTML and the hydrated page agree.

pub mod bgp;
pub mod hosts;
pub mod ipam;
pub mod mtu;
pub mod runs;
pub mod vocab;

use serde::{Deserialize, Serialize};

/// How fresh a cluster's state is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// The first node list arrived.
    pub synced: bool,
    /// Set while the API server cannot be watched: the state shown is the last known, stale.
    pub unreachable_since: Option<String>,
    pub error: Option<String>,
    /// Resources whose watch fails while the API server answers (e.g. RBAC): (resource, error).
    pub resource_errors: Vec<(String, String)>,
}

impl LinkView {
    /// The failing watches grouped by their error, each error once with the resources that
    /// fail with it, in the order first seen: an outage fails every watch alike (17 lines of
    /// one message on the overview before), RBAC fails a few with their own.
    pub fn resource_errors_by_cause(&self) -> Vec<(Vec<&str>, &str)> {
        let mut groups: Vec<(Vec<&str>, &str)> = Vec::new();
        for (resource, error) in &self.resource_errors {
            match groups.iter_mut().find(|(_, e)| *e == error.as_str()) {
                Some((resources, _)) => resources.push(resource),
                None => groups.push((vec![resource.as_str()], error.as_str())),
            }
        }
        groups
    }
}

/// Node counts as `kubectl get nodes` would summarise them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    pub total: usize,
    pub ready: usize,
    pub not_ready: usize,
    pub unknown: usize,
    pub scheduling_disabled: usize,
}

/// A detected CNI plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniView {
    /// `Calico`, `Flannel`, `Cilium`, `Weave Net`, or the DaemonSet's name.
    pub kind: String,
    /// From the image tag.
    pub version: Option<String>,
    /// `namespace/name` of its DaemonSet.
    pub daemonset: String,
}

/// A DaemonSet's or Deployment's rollout counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadView {
    pub namespace: String,
    pub name: String,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
    pub updated: i32,
}

/// A Calico IPPool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    pub name: String,
    pub cidr: String,
    pub block_size: i64,
    pub ipip_mode: String,
    pub vxlan_mode: String,
    pub nat_outgoing: bool,
    pub disabled: bool,
}

/// A component the Tigera operator reports on (`TigeraStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TigeraStatusView {
    pub name: String,
    /// `Available`, `Progressing`, `Degraded` or `Unknown`.
    pub state: String,
    pub reason: String,
    pub message: String,
    /// When its telling condition last changed (RFC 3339 UTC).
    pub since: String,
}

/// How Calico runs on a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalicoView {
    /// `manifest` (kube-system) or `operator` (the Tigera operator, calico-system).
    pub method: String,
    pub version: Option<String>,
    /// The API serving its resources: `crd.projectcalico.org/v1` or `projectcalico.org/v3`.
    pub api: Option<String>,
    /// The Calico API server (`v3.projectcalico.org`), when registered: available, and why
    /// not.
    pub apiserver: Option<(bool, String)>,
    /// The operator's reports, by component.
    pub components: Vec<TigeraStatusView>,
    /// The operator's Installation: its pools (`cidr /block encapsulation`), MTU, data plane.
    pub pools: Vec<String>,
    pub mtu: Option<i64>,
    pub dataplane: Option<String>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

/// One observed fact behind a finding: an object, a field and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `Node/rigel`, `IPPool/default-ipv4-ippool`, `Pod/kube-system/calico-node-x`.
    pub object: String,
    /// `status.conditions[Ready].message`, `metadata.annotations[projectcalico.org/IPv4Address]`.
    pub field: String,
    pub value: String,
}

/// A diagnostic: a known failure recognised in the cluster's state. The UI turns `rule` and
/// `params` into the title, explanation and fix in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier, e.g. `calico.duplicate-ipv4`.
    pub rule: String,
    pub severity: Severity,
    /// Nodes it concerns (empty when cluster-wide).
    pub nodes: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// Values for the texts' placeholders, e.g. `("pool", "192.168.0.0/16")`.
    pub params: Vec<(String, String)>,
}

impl Finding {
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A cluster's overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewView {
    pub cluster: String,
    pub link: LinkView,
    /// kube-apiserver's version according to kubeadm-config, or the kubelets'.
    pub kubernetes_version: Option<String>,
    pub nodes: NodeCounts,
    pub pods: usize,
    pub cnis: Vec<CniView>,
    pub calico_node: Option<WorkloadView>,
    /// Nodes whose calico-node pod is missing or not Ready (the first ones).
    pub calico_node_unready: Vec<String>,
    pub calico_node_unready_total: usize,
    pub kube_controllers: Option<WorkloadView>,
    pub calico_version: Option<String>,
    /// Names of the FelixConfiguration objects (`default`, `node.<name>`).
    pub felix_configurations: Vec<String>,
    pub pools: Vec<PoolView>,
    pub blocks: usize,
    pub block_addresses_in_use: usize,
    pub pod_subnet: Option<String>,
    pub service_subnet: Option<String>,
    /// How Calico runs, when it does (or its operator's resources exist).
    #[serde(default)]
    pub calico: Option<CalicoView>,
    /// kube-proxy's configured mode (`iptables`, `ipvs`, `nftables`), when its ConfigMap exists.
    #[serde(default)]
    pub kube_proxy_mode: Option<String>,
    pub findings: Vec<Finding>,
}

/// The nodes table's query: search, filters, sort and page. Every field has a default, so an
/// empty query string is a valid query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodesQuery {
    /// Substring of the name, an address, a pod CIDR or the version.
    pub q: String,
    /// `ready`, `notready`, `unknown`, `cordoned`, `issues` or empty for all.
    pub status: String,
    /// A role, `none` for nodes without one, or empty for all.
    pub role: String,
    /// `name`, `status`, `roles`, `age`, `version`, `ip`, `pods`.
    pub sort: String,
    pub desc: bool,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

impl Default for NodesQuery {
    fn default() -> Self {
        Self {
            q: String::new(),
            status: String::new(),
            role: String::new(),
            sort: "name".to_owned(),
            desc: false,
            page: 1,
            per_page: 50,
        }
    }
}

/// The largest page the nodes table serves.
pub const MAX_PER_PAGE: usize = 500;

/// One row of the nodes table: `kubectl get nodes -o wide` plus the networking columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRow {
    pub name: String,
    /// `Ready`, `NotReady,SchedulingDisabled`, ...
    pub status: String,
    pub ready: bool,
    pub roles: Vec<String>,
    pub age: String,
    pub version: String,
    pub internal_ip: Option<String>,
    pub os_image: String,
    pub kernel: String,
    pub runtime: String,
    pub pod_cidrs: Vec<String>,
    pub calico_ipv4: Option<String>,
    pub calico_tunnel: Option<String>,
    /// NetworkUnavailable: (status, reason) when the condition exists.
    pub network_unavailable: Option<(String, String)>,
    /// The calico-node pod on the node: `Running`, `Running (not ready)`, `CrashLoopBackOff`...
    pub calico_node: Option<String>,
    pub calico_node_ready: bool,
    pub pods: usize,
    /// How many findings concern this node.
    pub findings: usize,
}

/// A page of the nodes table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodesPageView {
    pub cluster: String,
    pub link: LinkView,
    pub rows: Vec<NodeRow>,
    /// Nodes in the cluster.
    pub total: usize,
    /// Nodes matching the query.
    pub matched: usize,
    pub page: usize,
    pub pages: usize,
    pub per_page: usize,
    /// Every role present (for the filter).
    pub roles: Vec<String>,
}

/// A node condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionView {
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition: String,
}

/// A pod on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    pub ip: Option<String>,
    /// `DaemonSet/calico-node`, or empty without controller.
    pub owner: String,
    /// Phase, or the waiting reason when a container waits (`CrashLoopBackOff`).
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    pub age: String,
}

/// An IPAM block affine to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub cidr: String,
    /// The BlockAffinity's state (`confirmed`, `pending`, ...).
    pub state: String,
    pub in_use: usize,
    pub size: usize,
}

/// The calico-node pod of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalicoPodView {
    pub name: String,
    pub ready: bool,
    pub state: String,
    pub restarts: i32,
    /// `reason: message` of the last termination.
    pub last_termination: Option<String>,
}

/// A Warning event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// `Node/rigel`, `Pod/kube-system/calico-node-x`.
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub last_seen: String,
}

/// Everything on a node's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDetailView {
    pub cluster: String,
    pub link: LinkView,
    pub row: NodeRow,
    pub conditions: Vec<ConditionView>,
    /// `key=value:Effect`.
    pub taints: Vec<String>,
    /// (type, address).
    pub addresses: Vec<(String, String)>,
    pub pods: Vec<PodRow>,
    pub blocks: Vec<BlockView>,
    pub calico_pod: Option<CalicoPodView>,
    pub events: Vec<EventView>,
    pub findings: Vec<Finding>,
}

#[cfg(test)]
mod tests {
    use super::LinkView;

    #[test]
    fn watch_errors_are_grouped_by_their_cause_in_first_seen_order() {
        let refused = "failed to list: connection refused";
        let link = LinkView {
            resource_errors: vec![
                ("ippools".into(), refused.into()),
                ("secrets".into(), "forbidden: cannot list secrets".into()),
                ("ipamblocks".into(), refused.into()),
                ("pods".into(), refused.into()),
            ],
            ..LinkView::default()
        };
        assert_eq!(
            link.resource_errors_by_cause(),
            vec![
                (vec!["ippools", "ipamblocks", "pods"], refused),
                (vec!["secrets"], "forbidden: cannot list secrets"),
            ]
        );
        assert!(LinkView::default().resource_errors_by_cause().is_empty());
    }
}
