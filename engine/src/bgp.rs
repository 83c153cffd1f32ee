//! Calico's BGP peering from the watched state: the topology (the node-to-node mesh unless
//! BGPConfiguration turns it off; route reflectors from the nodes' cluster ids and BGPPeers)
//! and the sessions calico-node reports not established. calico-node's readiness probe says
//! which ("BIRD is not ready: BGP not established with 10.13.0.12,10.13.0.13"), and the API
//! carries it as the pod's Unhealthy event; a session counts as down while that calico-node is
//! not ready.

use std::collections::{BTreeMap, BTreeSet};

use grappe_views::bgp::{BgpView, SessionDownView};

use crate::net::address_part;
use crate::state::store::Stores;
use crate::time::fmt_unix_seconds;

/// What calico-node's readiness probe says before the peers it has no session with.
const NOT_ESTABLISHED: &str = "BGP not established with ";

/// The most nodes the page draws as a matrix (beyond, it lists what is down).
pub const MATRIX_NODES: usize = 40;

/// The peer addresses a readiness message names.
#[must_use]
pub fn peers_down(message: &str) -> Vec<String> {
    let Some((_, rest)) = message.split_once(NOT_ESTABLISHED) else {
        return Vec::new();
    };
    rest.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
        .collect()
}

/// What draining `nodes` means for route reflection: `None` unless the mesh is off and some of
/// them reflect routes. A drain leaves calico-node running (DaemonSet pods stay), but the
/// maintenance it prepares (a reboot, a reset) stops BIRD there.
#[must_use]
pub fn drain_warning(stores: &Stores, nodes: &[&str]) -> Option<String> {
    if mesh(stores) {
        return None;
    }
    let (draining, left): (Vec<String>, Vec<String>) = route_reflectors(stores)
        .into_iter()
        .partition(|r| nodes.contains(&r.as_str()));
    if draining.is_empty() {
        return None;
    }
    let names = draining
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Some(if left.is_empty() {
        format!(
            "{names}: the cluster's only route reflector(s), with the node-to-node mesh off. The drain leaves calico-node running, but once it stops there (reboot, reset) every other node loses its BGP peer and the routes to pods on other nodes are withdrawn. Make another node a route reflector first."
        )
    } else {
        format!(
            "{names} reflect routes; {} other route reflector(s) remain ({}), so the nodes keep a BGP peer while they are down.",
            left.len(),
            left.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Whether the node-to-node mesh is on (BGPConfiguration `default`; on when unset).
fn mesh(stores: &Stores) -> bool {
    stores
        .bgp_configs
        .get("default")
        .is_none_or(|c| c.node_to_node_mesh)
}

/// The nodes with a route reflector cluster id.
fn route_reflectors(stores: &Stores) -> Vec<String> {
    stores
        .nodes
        .values()
        .filter(|n| n.rr_cluster_id.is_some())
        .map(|n| n.name.clone())
        .collect()
}

/// Each node by the addresses it peers from: its Calico address and its InternalIP.
#[must_use]
pub fn nodes_by_address(stores: &Stores) -> BTreeMap<String, &str> {
    stores
        .nodes
        .values()
        .flat_map(|n| {
            let calico = n
                .calico_ipv4
                .as_deref()
                .and_then(address_part)
                .map(|ip| ip.to_string());
            let internal = n.internal_ip().map(str::to_owned);
            calico
                .into_iter()
                .chain(internal)
                .map(move |ip| (ip, n.name.as_str()))
        })
        .collect()
}

/// The peering of the cluster whose tables `stores` holds.
#[must_use]
pub fn view(stores: &Stores) -> BgpView {
    let mesh = mesh(stores);
    let by_ip = nodes_by_address(stores);
    let mut down = Vec::new();
    for node in stores.nodes.keys() {
        let Some(pod) = stores.calico_node_pod(node) else {
            continue;
        };
        if pod.ready {
            continue;
        }
        let latest = stores
            .events_for("Pod", &pod.namespace, &pod.name)
            .into_iter()
            .filter(|e| e.message.contains(NOT_ESTABLISHED))
            .max_by_key(|e| e.last_seen);
        let Some(event) = latest else {
            continue;
        };
        for ip in peers_down(&event.message) {
            down.push(SessionDownView {
                node: node.clone(),
                peer_node: by_ip.get(&ip).map(|n| (*n).to_owned()),
                peer_ip: ip,
                since: fmt_unix_seconds(event.last_seen),
                count: event.count,
            });
        }
    }
    let route_reflectors = route_reflectors(stores);
    let peers: BTreeSet<String> = stores.bgp_peers.values().map(|p| p.describe()).collect();
    BgpView {
        calico: !stores.ippools.is_empty(),
        mesh,
        as_number: stores.bgp_configs.get("default").and_then(|c| c.as_number),
        nodes: stores.nodes.keys().take(MATRIX_NODES).cloned().collect(),
        nodes_total: stores.nodes.len(),
        route_reflectors,
        peers: peers.into_iter().collect(),
        down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readiness_message_names_the_peers() {
        assert_eq!(
            peers_down(
                "Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not established with 10.13.0.12,10.13.0.13"
            ),
            ["10.13.0.12", "10.13.0.13"]
        );
        assert_eq!(
            peers_down(
                "calico/node is not ready: BIRD is not ready: BGP not established with 10.13.0.12\n"
            ),
            ["10.13.0.12"]
        );
        assert!(peers_down("Readiness probe failed: felix is not ready").is_empty());
        assert!(peers_down("BGP not established with <script>").is_empty());
    }

    fn node(name: &str, rr: bool) -> crate::state::model::NodeInfo {
        let mut ann = serde_json::Map::new();
        if rr {
            ann.insert(
                "projectcalico.org/RouteReflectorClusterID".into(),
                "224.0.0.1".into(),
            );
        }
        let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": ann}
        }))
        .expect("node");
        crate::state::model::NodeInfo::from_node(n).expect("node info")
    }

    #[test]
    fn draining_the_only_route_reflector_is_warned_and_a_mesh_needs_nothing() {
        use crate::state::model::BgpConfigInfo;
        use crate::state::store::Change;
        let mut s = Stores::default();
        s.apply_nodes(Change::Reset(vec![
            node("rigel", true),
            node("saiph", false),
            node("vega", false),
        ]));
        assert_eq!(drain_warning(&s, &["rigel"]), None, "the mesh is on");
        s.apply_bgp_configs(Change::Reset(vec![BgpConfigInfo {
            name: "default".into(),
            node_to_node_mesh: false,
            as_number: None,
        }]));
        let only = drain_warning(&s, &["rigel", "saiph"]).expect("warned");
        assert!(
            only.starts_with("rigel: the cluster's only route reflector"),
            "{only}"
        );
        assert_eq!(drain_warning(&s, &["saiph"]), None);
        s.apply_nodes(Change::Upsert(node("vega", true)));
        let other = drain_warning(&s, &["rigel"]).expect("said");
        assert!(
            other.contains("1 other route reflector(s) remain (vega)"),
            "{other}"
        );
    }
}
