//! Rules about MTU and encapsulation, from the same view as the MTU page ([`crate::mtu::view`]):
//! a pod MTU larger than a known path carries, nodes without the tunnel address their pool's
//! encapsulation needs, and CrossSubnet pools while every node is in one subnet.

use grappe_views::mtu::MtuVerdict;
use grappe_views::{Finding, Severity};

use super::{ev, p};
use crate::state::store::Stores;

pub const MTU_TOO_LARGE: &str = "calico.mtu-too-large";
pub const TUNNEL_ADDRESS_MISSING: &str = "calico.tunnel-address-missing";
pub const CROSS_SUBNET_ONE_SUBNET: &str = "calico.cross-subnet-one-subnet";

pub(super) fn rules(stores: &Stores, out: &mut Vec<Finding>) {
    if stores.ippools.is_empty() {
        return;
    }
    let view = crate::mtu::view(stores);
    if let Some(pool) = view
        .pools
        .iter()
        .filter(|p| p.verdict == MtuVerdict::TooLarge)
        .max_by_key(|p| p.pod_mtu + p.overhead)
    {
        // The nodes whose link, or the path to which, is smaller than the pods' packets.
        let nodes = view
            .hosts
            .iter()
            .filter(|h| h.mtu < pool.pod_mtu + pool.overhead)
            .map(|h| h.node.clone())
            .chain(
                view.probes
                    .iter()
                    .filter(|p| p.largest.is_some_and(|l| l < pool.pod_mtu + pool.overhead))
                    .map(|p| p.to.clone()),
            )
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push(Finding {
            rule: MTU_TOO_LARGE.into(),
            severity: Severity::Critical,
            nodes,
            evidence: vec![
                ev(
                    format!("IPPool/{}", pool.name),
                    "encapsulation",
                    format!("{} ({} bytes)", pool.encapsulation, pool.overhead),
                ),
                ev("pod MTU", pool.pod_source.clone(), pool.pod_mtu.to_string()),
                ev(
                    pool.path_source.clone(),
                    "path MTU",
                    pool.path_mtu.to_string(),
                ),
            ],
            params: vec![
                p("pool", pool.name.clone()),
                p("pod_mtu", pool.pod_mtu.to_string()),
                p("packet", (pool.pod_mtu + pool.overhead).to_string()),
                p("path_mtu", pool.path_mtu.to_string()),
                p("path", pool.path_source.clone()),
                p("expected", pool.expected.to_string()),
                p("encapsulation", pool.encapsulation.clone()),
            ],
        });
    }
    if let Some(first) = view.missing_tunnels.first() {
        let mut nodes: Vec<String> = view
            .missing_tunnels
            .iter()
            .map(|m| m.node.clone())
            .collect();
        nodes.dedup();
        out.push(Finding {
            rule: TUNNEL_ADDRESS_MISSING.into(),
            severity: Severity::Warning,
            evidence: view
                .missing_tunnels
                .iter()
                .take(5)
                .map(|m| ev(format!("Node/{}", m.node), m.annotation.clone(), "absent"))
                .collect(),
            params: vec![
                p("count", nodes.len().to_string()),
                p(
                    "nodes",
                    nodes
                        .iter()
                        .take(10)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                p("node", first.node.clone()),
                p("encapsulation", first.encapsulation.clone()),
                p("annotation", first.annotation.clone()),
            ],
            nodes,
        });
    }
    if let Some((pool, subnet)) = view.cross_subnet_one_subnet.first() {
        out.push(Finding {
            rule: CROSS_SUBNET_ONE_SUBNET.into(),
            severity: Severity::Info,
            nodes: vec![],
            evidence: vec![
                ev(
                    format!("IPPool/{pool}"),
                    "spec.ipipMode / spec.vxlanMode",
                    "CrossSubnet",
                ),
                ev(
                    "Nodes",
                    "projectcalico.org/IPv4Address",
                    format!("all in {subnet}"),
                ),
            ],
            params: vec![p("pool", pool.clone()), p("subnet", subnet.clone())],
        });
    }
}
