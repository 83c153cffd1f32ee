//! The BGP page: how Calico peers (the node-to-node mesh, or route reflectors and BGPPeers)
//! and the sessions calico-node reports not established.

use serde::{Deserialize, Serialize};

/// A session a node's calico-node reports down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDownView {
    pub node: String,
    pub peer_ip: String,
    /// The node that has the peer's address, when it is one of the cluster's.
    pub peer_node: Option<String>,
    /// When calico-node last said so (its readiness probe's event).
    pub since: String,
    /// How many times the probe said so.
    pub count: i32,
}

/// A cluster's BGP peering.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpView {
    /// Whether Calico runs (it has pools).
    pub calico: bool,
    /// The node-to-node mesh (BGPConfiguration `nodeToNodeMeshEnabled`, on by default).
    pub mesh: bool,
    pub as_number: Option<u32>,
    /// The first nodes (by name), for the matrix.
    pub nodes: Vec<String>,
    pub nodes_total: usize,
    /// Nodes with a route reflector cluster id.
    pub route_reflectors: Vec<String>,
    /// Each BGPPeer, described.
    pub peers: Vec<String>,
    pub down: Vec<SessionDownView>,
}

impl BgpView {
    /// Whether the session between `node` and `peer` is reported down (either way).
    pub fn is_down(&self, node: &str, peer: &str) -> bool {
        self.down.iter().any(|d| {
            (d.node == node && d.peer_node.as_deref() == Some(peer))
                || (d.node == peer && d.peer_node.as_deref() == Some(node))
        })
    }
}

/// One BGP session as a node's BIRD reports it (`birdcl show protocols`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSessionView {
    /// BIRD's protocol name (`Mesh_10_13_0_3`, `Node_10_13_0_5`).
    pub name: String,
    pub peer_ip: Option<String>,
    /// The node with that address, when it is one of the cluster's.
    pub peer_node: Option<String>,
    /// `up`, `start`, ...
    pub state: String,
    pub since: String,
    /// `Established`, `Active Socket: Connection refused`, ...
    pub info: String,
}

impl BgpSessionView {
    pub fn established(&self) -> bool {
        self.state == "up" && self.info.starts_with("Established")
    }
}

/// A node's session table, read over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSessionsView {
    pub node: String,
    pub sessions: Vec<BgpSessionView>,
    pub actor: String,
    pub at: String,
    pub duration_ms: u64,
}
