//! The MTU page: per IP pool, the pod MTU its encapsulation allows on the hosts' links against
//! the one configured; the hosts' link MTUs from their checks; the path-MTU probes between
//! nodes; nodes without the tunnel address their pool's encapsulation needs.

use serde::{Deserialize, Serialize};

/// How a pool's configured pod MTU compares with what the paths allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MtuVerdict {
    /// Fits the smallest path known.
    Fits,
    /// Larger than the smallest path allows: large packets are dropped.
    TooLarge,
    /// Smaller than it could be (fits, wastes a little throughput).
    Smaller,
}

/// One pool's MTU budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtuPoolView {
    pub name: String,
    pub cidr: String,
    /// `IPIP`, `IPIP CrossSubnet`, `VXLAN`, `WireGuard`, `none`.
    pub encapsulation: String,
    /// Bytes the encapsulation adds to each packet.
    pub overhead: u32,
    /// The smallest path MTU known (hosts' links, probes), or 1500 when none is known.
    pub path_mtu: u32,
    /// Where `path_mtu` comes from (`Node/x eth0`, `probe a -> b`), empty when assumed.
    pub path_source: String,
    /// The largest pod MTU the smallest path carries: `path_mtu - overhead`.
    pub expected: u32,
    /// The pod MTU pods get: the configured one, or Calico's auto-detection's.
    pub pod_mtu: u32,
    /// Where `pod_mtu` comes from (`Installation spec.calicoNetwork.mtu`, `calico-config
    /// veth_mtu`, or `auto` for Calico's detection from the largest host MTU known).
    pub pod_source: String,
    pub verdict: MtuVerdict,
}

/// A host link's MTU, from the node's latest host check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMtuView {
    pub node: String,
    /// The interface of the default route (the host's uplink).
    pub iface: String,
    pub mtu: u32,
    /// Calico's tunnel and workload links (`tunl0 1480`, `vxlan.calico 1450`, `cali* 1480`).
    pub calico_links: Vec<(String, u32)>,
    pub at: String,
}

/// One step of a probe: a packet of `size` bytes with Don't Fragment set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStep {
    pub size: u32,
    pub passed: bool,
}

/// A path-MTU probe from one node's host to another's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeView {
    pub from: String,
    pub to: String,
    pub to_ip: String,
    /// The largest packet (IP header included) that passed; `None` when nothing passed.
    pub largest: Option<u32>,
    pub steps: Vec<ProbeStep>,
    pub actor: String,
    pub at: String,
    pub duration_ms: u64,
}

/// A node without the tunnel address its pools' encapsulation needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingTunnelView {
    pub node: String,
    /// `IPIP` or `VXLAN`.
    pub encapsulation: String,
    /// The annotation Calico writes when it sets the tunnel up.
    pub annotation: String,
}

/// A cluster's MTU and encapsulation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtuView {
    /// Whether Calico runs (it has pools).
    pub calico: bool,
    pub pools: Vec<MtuPoolView>,
    pub hosts: Vec<HostMtuView>,
    pub probes: Vec<ProbeView>,
    pub missing_tunnels: Vec<MissingTunnelView>,
    /// CrossSubnet pools while every node is in one subnet (that subnet).
    pub cross_subnet_one_subnet: Vec<(String, String)>,
    /// The nodes a probe can start from and go to (the first ones, by name).
    pub nodes: Vec<String>,
}
