//! Rules about Calico's BGP peering, from the same view as the BGP page ([`crate::bgp::view`]):
//! sessions calico-node reports not established, and route reflection without redundancy.

use grappe_views::{Finding, Severity};

use super::{ev, p};
use crate::state::store::Stores;

pub const BGP_PEER_DOWN: &str = "calico.bgp-peer-down";
pub const ROUTE_REFLECTOR_SINGLE: &str = "calico.route-reflector-single";

pub(super) fn rules(stores: &Stores, out: &mut Vec<Finding>) {
    if stores.ippools.is_empty() {
        return;
    }
    let view = crate::bgp::view(stores);
    if !view.down.is_empty() {
        let mut nodes: Vec<String> = view.down.iter().map(|d| d.node.clone()).collect();
        nodes.sort();
        nodes.dedup();
        let sessions: Vec<String> = view
            .down
            .iter()
            .take(10)
            .map(|d| {
                format!(
                    "{} -> {}{}",
                    d.node,
                    d.peer_ip,
                    d.peer_node
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        out.push(Finding {
            rule: BGP_PEER_DOWN.into(),
            severity: Severity::Warning,
            evidence: view
                .down
                .iter()
                .take(5)
                .map(|d| {
                    ev(
                        format!("Node/{} calico-node", d.node),
                        "readiness probe",
                        format!(
                            "BGP not established with {} (since {}, {} times)",
                            d.peer_ip, d.since, d.count
                        ),
                    )
                })
                .collect(),
            params: vec![
                p("count", view.down.len().to_string()),
                p("sessions", sessions.join(", ")),
            ],
            nodes,
        });
    }
    if !view.mesh && view.route_reflectors.len() == 1 {
        out.push(Finding {
            rule: ROUTE_REFLECTOR_SINGLE.into(),
            severity: Severity::Warning,
            nodes: view.route_reflectors.clone(),
            evidence: vec![
                ev(
                    "BGPConfiguration/default",
                    "spec.nodeToNodeMeshEnabled",
                    "false",
                ),
                ev(
                    format!("Node/{}", view.route_reflectors[0]),
                    "projectcalico.org/RouteReflectorClusterID",
                    "the only route reflector",
                ),
            ],
            params: vec![p("node", view.route_reflectors[0].clone())],
        });
    }
}
